"""Finding task files: the bundled library, ``$LMBFF_TEMPLATES`` and ``./templates``, by name or path."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from .task import TaskFile
from .task_schema import load_task_file

TEMPLATES_ENV = "LMBFF_TEMPLATES"


def bundled_templates_dir() -> Path:
    """The template library shipped with the toolkit (inside a wheel, or the repository's templates/)."""
    inside = Path(__file__).resolve().parent / "_bundled" / "templates"
    return inside if inside.is_dir() else Path(__file__).resolve().parent.parent / "templates"


def template_dirs(extra: list[str | os.PathLike] | None = None) -> list[Path]:
    """Where task files are looked up: ``extra``, then $LMBFF_TEMPLATES, then ``./templates`` (where
    ``lmbff templates new`` writes), then the bundled library."""
    dirs = [Path(p) for p in (extra or [])]
    dirs += [Path(p) for p in os.environ.get(TEMPLATES_ENV, "").split(os.pathsep) if p]
    dirs.append(Path.cwd() / "templates")
    dirs.append(bundled_templates_dir())
    return dirs


def iter_task_files(dirs: list[Path] | None = None) -> Iterator[Path]:
    seen: set[Path] = set()
    for directory in dirs or template_dirs():
        if directory.is_dir() and directory.resolve() not in seen:
            seen.add(directory.resolve())
            yield from sorted(p for p in directory.glob("*.yaml") if p.stem != "events")


def find_task_file(name_or_path: str, dirs: list[Path] | None = None) -> Path:
    """The task file for a task name (case-insensitive) or a path to a YAML file.

    Raises:
        FileNotFoundError: no file matches; the message lists the known tasks.
    """
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") and candidate.is_file():
        return candidate
    wanted = name_or_path.lower()
    seen = []
    for path in iter_task_files(dirs):
        seen.append(path.stem)
        if path.stem.lower() == wanted:
            return path
    raise FileNotFoundError(
        f"no task file for {name_or_path!r}; known tasks: {', '.join(sorted(set(seen)))}. "
        f"Add templates/<task>.yaml, point ${TEMPLATES_ENV} at a folder of task files, or pass a .yaml path."
    )


def load_task(name_or_path: str, dirs: list[Path] | None = None) -> TaskFile:
    """Find and read a task file by task name or path."""
    return load_task_file(find_task_file(name_or_path, dirs))
