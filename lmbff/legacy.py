"""States saved by lmbff 0.1 (format 1), in one place. Such a state named its task file and nothing else
(no template text, no label words, no checksum): it is read only when that file is one of the bundled
task files exactly as 0.1 shipped it (a SHA-256 checksum in ``legacy_task_checksums.json``), and
otherwise refused with the command that re-saves it (``lmbff upgrade-state``,
:func:`lmbff.state.upgrade_legacy_state`), never scored with whatever the file says today."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from prompts.library import find_task_file, load_task_file

from .config import DemonstrationConfig
from .data import Example, load_split
from .demonstrations import Demonstrations
from .errors import ConfigError, StateError, TaskFileError

LEGACY_CHECKSUMS = Path(__file__).with_name("legacy_task_checksums.json")


def legacy_error(folder: Path, task_name: str, why: str) -> StateError:
    """Why a format-1 state is not loaded, with the command that re-saves it."""
    return StateError(
        f"{folder}: this state was saved by lmbff 0.1, which recorded only the name of its task file "
        f"({task_name!r}) and no checksum of it, so its template and label words cannot be verified: "
        f"{why}. It is not loaded rather than risk scoring it with other label words. If the task file "
        f"is the one it was trained with, re-save the state once: "
        f"lmbff upgrade-state --state {folder} --task <that task file> [--model <its base model>]"
    )


def legacy_scoring(folder: Path, experiment: dict) -> tuple[str, str | None, int]:
    """(task file path, template name, max_length) of a format-1 state whose task file is a bundled
    one, unchanged since 0.1.0. Raises StateError otherwise."""
    settings = experiment.get("classifier", experiment)
    task_name = str(settings.get("task", ""))
    try:
        path = find_task_file(task_name)
    except FileNotFoundError:
        raise legacy_error(folder, task_name, "no such task file is found from here") from None
    known = json.loads(LEGACY_CHECKSUMS.read_text())
    if hashlib.sha256(path.read_bytes()).hexdigest() not in known.get(path.name, []):
        raise legacy_error(folder, task_name, f"{path} is not a task file shipped with lmbff 0.1.0")
    return str(path), settings.get("template"), int(settings.get("max_length", 128))


def legacy_prompt(legacy_task: tuple[str, str | None, int]):
    """(task file, prompt, max_length) of a verified format-1 state (:func:`legacy_scoring`)."""
    path, template, max_length = legacy_task
    task_file = load_task_file(path)
    try:
        prompt = task_file.prompt(template)
    except ConfigError as exc:
        raise TaskFileError(path, None, "templates", str(exc)) from None
    return task_file, prompt, max_length


def legacy_demonstrations(experiment: dict, task) -> Demonstrations | None:
    """The demonstration pool of a format-1 state that used demonstrations: the training examples a
    PromptClassifier kept, or its run's k-shot train split (format 2 states carry their pool)."""
    settings = experiment.get("classifier", experiment)
    if not (settings.get("demonstrations") is True or experiment.get("method") == "prompt-demos"):
        return None
    if settings.get("train"):  # a PromptClassifier kept its training examples
        pool = [Example(t["fields"], t["label"]) for t in settings["train"]]
        return Demonstrations(pool, task, DemonstrationConfig())
    pool = load_split(experiment["data_dir"], "train", task).examples  # a run read its k-shot folder
    return Demonstrations(pool, task, DemonstrationConfig(**experiment.get("demonstrations", {})))
