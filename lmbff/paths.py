"""Where things are: data folders, the files shipped with the toolkit, and the environment variables
that move them. One place, so every command, the studio and the Python API look in the same order.

Environment: ``$LMBFF_DATA`` (a folder of task data folders, ``<LMBFF_DATA>/<task>``),
``$LMBFF_TEMPLATES`` (folders of task files, see :func:`prompts.library.template_dirs`),
``$LMBFF_CACHE`` (converted models and embeddings, see :func:`lmbff.pretrained.cache_dir`).
"""

from __future__ import annotations

import os
from pathlib import Path

from prompts.library import TEMPLATES_ENV, TaskFile, bundled_templates_dir

DATA_ENV = "LMBFF_DATA"
_PACKAGE = Path(__file__).resolve().parent

__all__ = ["DATA_ENV", "TEMPLATES_ENV", "bundled_data_dir", "bundled_templates_dir", "task_data_candidates"]


def bundled_data_dir(name: str = "") -> Path:
    """A folder of the data shipped with the toolkit (``reviews``, ``events``): inside an installed wheel
    (``lmbff/_bundled/data``), else the repository's ``data/``."""
    inside = _PACKAGE / "_bundled" / "data" / name
    return inside if inside.is_dir() else _PACKAGE.parent / "data" / name


def task_data_candidates(task_file: TaskFile, data_dir: str | os.PathLike | None = None) -> list[Path]:
    """Where a task's data may be, in the order every command and the studio look: ``data_dir`` given
    (``<data_dir>/<task>``, then ``data_dir`` itself), ``$LMBFF_DATA/<task>``, the task file's own
    folder."""
    candidates: list[Path] = []
    if data_dir is not None:
        candidates += [Path(data_dir) / task_file.task.name, Path(data_dir)]
    if os.environ.get(DATA_ENV):
        candidates.append(Path(os.environ[DATA_ENV]) / task_file.task.name)
    candidates.append(Path(task_file.path).parent)
    return candidates


def holds_data(folder: Path) -> bool:
    """Whether a folder holds data files at its top level (TSV, CSV, JSON lines, or `datasets` folders)."""
    from .data import EXTENSIONS

    if not folder.is_dir():
        return False
    return any(
        (p.is_file() and p.name.endswith(EXTENSIONS)) or (p / "dataset_info.json").exists()
        for p in folder.iterdir()
    )


def task_data_dir(task_file: TaskFile, data_dir: str | os.PathLike | None = None) -> Path:
    """The first of :func:`task_data_candidates` that holds data; ``data_dir`` itself when none does
    (reading it then says what is missing).

    Raises:
        FileNotFoundError: no ``data_dir`` and no candidate holds data.
    """
    for folder in task_data_candidates(task_file, data_dir):
        if holds_data(folder):
            return folder
    if data_dir is not None:
        return Path(data_dir)
    raise FileNotFoundError(
        f"no data for task {task_file.task.name}: pass --data-dir (or set ${DATA_ENV} to a folder of "
        "task folders)"
    )
