"""What a distillation reads, checked before any model loads: the teacher states and the unlabelled
texts."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from prompts.library import Task

from ..data import Example, read_examples
from ..errors import ConfigError, DataError, StateError
from ..files import refuse_existing

TEXT_SUFFIXES = (".txt",)


def read_unlabelled(
    path: str | os.PathLike, task: Task, columns: dict[str, str] | None = None, limit: int | None = None
) -> tuple[list[Example], str]:
    """(examples, SHA-256 of the file) of unlabelled texts: a ``.txt`` file of one text per line (a
    one-field task), or any data file the toolkit reads (its label column, if any, is ignored).

    Raises:
        DataError: a missing, unreadable or empty file, or rows that do not have the task's fields.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(str(path), None, "no such file" if not path.exists() else "not a file")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DataError(str(path), None, f"cannot be read ({error.strerror})") from None
    digest = hashlib.sha256(data).hexdigest()
    if path.suffix in TEXT_SUFFIXES:
        if len(task.fields) != 1:
            raise DataError(
                str(path),
                None,
                f"one text per line fits a one-field task; this one reads {list(task.fields)}",
            )
        try:
            lines = data.decode("utf-8").splitlines()
        except UnicodeDecodeError as error:
            raise DataError(str(path), None, f"not UTF-8 ({error.reason} at byte {error.start})") from None
        examples = [
            Example({task.fields[0]: line}, None, f"{path}:{number}")
            for number, line in enumerate(lines, 1)
            if line.strip()
        ]
        if not examples:
            raise DataError(str(path), None, "no text in the file (empty, or only blank lines)")
    else:
        examples = read_examples(path, task, require_label=False, columns=columns).examples
    examples = [Example(e.fields, None, e.source) for e in examples]  # unlabelled: any gold is ignored
    return (examples[:limit] if limit else examples), digest


def check_teacher_state(state) -> None:
    """Raises StateError when a loaded state cannot teach: the classification-head baseline, or a state
    from before self-contained states."""
    from ..state import FINETUNE_STATE

    if state.experiment.get("method") == "finetune":
        raise StateError(f"{state.folder}: {FINETUNE_STATE}; a teacher is a prompt-based state")
    if state.scoring is None:
        raise StateError(f"{state.folder}: a state saved by lmbff 0.1; re-save it with lmbff upgrade-state")


def check_distillation(state, out: str | os.PathLike) -> Task:
    """The task of a teacher state, after the checks every distillation makes before a model loads.

    Raises:
        StateError: the state cannot teach; ConfigError: a regression task; FileExistsError: ``out``
            exists.
    """
    check_teacher_state(state)
    task = state.scoring.task
    if task.is_regression:
        raise ConfigError(f"{task.name} is a regression task; a student learns class probabilities")
    if task.multi_label:
        # A student learns one distribution over the classes; a multi-label teacher's decisions are its
        # per-label thresholds, which a student would have to learn and keep too.
        raise ConfigError(f"{task.name} is a multi-label task; distillation takes single-label teachers")
    refuse_existing(out)
    return task


def teacher_record(states) -> list[dict]:
    """What a student records of its teacher states: folder, base model and its fingerprint."""
    return [
        {
            "folder": str(Path(s.folder).resolve()),
            "base_model": s.base.get("name"),
            "fingerprint": s.base.get("fingerprint"),
        }
        for s in states
    ]
