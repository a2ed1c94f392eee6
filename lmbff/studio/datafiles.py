"""Data files the studio offers for a task: found under the data folder, read once and cached."""

from __future__ import annotations

import os
from pathlib import Path

from prompts.library import TaskFile

from ..data import EXTENSIONS, ReadReport, read_examples
from ..paths import task_data_candidates
from .workspace import WorkspaceError

_MAX_FILES = 200
_MAX_DEPTH = 3
_PREFERRED = ("dev", "validation", "train", "test")


def data_folder(task_file: TaskFile, data_dir: Path | None) -> tuple[Path | None, list[str]]:
    """Where a task's data is, and the data files there, looking where the command line looks
    (:func:`lmbff.paths.task_data_candidates`)."""
    for folder in task_data_candidates(task_file, data_dir):
        files = list_data_files(folder) if folder.is_dir() else []
        if files:
            return folder.resolve(), files
    return None, []


def list_data_files(folder: Path) -> list[str]:
    """Data files under ``folder`` (a few levels deep), as paths relative to it."""
    found: list[str] = []
    root_depth = len(folder.parts)
    for current, dirs, files in os.walk(folder):
        depth = len(Path(current).parts) - root_depth
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if depth < _MAX_DEPTH else []
        for name in sorted(files):
            if name.endswith(EXTENSIONS):
                found.append(str((Path(current) / name).relative_to(folder)))
                if len(found) >= _MAX_FILES:
                    return found
    return found


def default_data_file(files: list[str]) -> str | None:
    """The file to start with: a top-level dev split, else train, else test, else the first."""
    for stem in _PREFERRED:
        for name in files:
            if Path(name).stem == stem and "/" not in name:
                return name
    return files[0] if files else None


def resolve_data_file(folder: Path, name: str) -> Path:
    """``name`` inside ``folder``, refused when it points anywhere else or is not a data file."""
    path = (folder / name).resolve()
    if not path.is_relative_to(folder) or Path(name).is_absolute():
        raise WorkspaceError(f"data file {name!r} is outside the data folder", status=403)
    if path.suffix not in EXTENSIONS or not path.is_file():
        raise WorkspaceError(f"no data file {name!r} in {folder}", status=404)
    return path


class ExampleCache:
    """Examples per (file, task), re-read when the file changes. Bad rows are skipped and counted, so
    one broken line does not keep the page from showing the others."""

    def __init__(self):
        self._cache: dict[tuple[str, str, float], ReadReport] = {}

    def read(self, path: Path, task_file: TaskFile) -> ReadReport:
        key = (str(path), task_file.task.name, path.stat().st_mtime)
        if key not in self._cache:
            if len(self._cache) > 16:
                self._cache.clear()
            self._cache[key] = read_examples(path, task_file.task, skip_bad=True, require_label=False)
        return self._cache[key]
