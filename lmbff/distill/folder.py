"""What every student folder (and compressed model folder) shares: its config.json's name and kind, and
the header it opens with; the encoder student and the prompt model folder each add their own files
(:mod:`lmbff.distill.student`, :mod:`lmbff.distill.prompt_student`)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from prompts.library import Task

from .. import __version__
from ..errors import StateError

STUDENT_KIND = "lmbff-student"
STUDENT_FORMAT = 1
CONFIG = "config.json"


def student_header(student: str, task: Task) -> dict:
    """What every student folder's config.json opens with: its format, kind and the task."""
    return {
        "format": STUDENT_FORMAT,
        "kind": STUDENT_KIND,
        "student": student,
        "lmbff_version": __version__,
        "task": task.to_dict(),
    }


def is_student(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` holds a student (its config.json says so)."""
    try:
        return json.loads((Path(folder) / CONFIG).read_text()).get("kind") == STUDENT_KIND
    except (OSError, ValueError, AttributeError):
        return False


def require_files(folder: Path, names: Sequence[str]) -> None:
    missing = [name for name in names if not (folder / name).is_file()]
    if missing:
        raise StateError(f"{folder}: not a complete student folder; missing {', '.join(missing)}")
