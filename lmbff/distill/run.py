"""Distillation: the teacher (one or more saved states, an ensemble as PET uses, or a fitted
PromptClassifier) labels unlabelled texts with its class probabilities, and a student learns them: the KL
divergence between the two at a temperature, optionally mixed with the gold labels of the labelled
examples. Everything is checked before any model loads, and the student folder is written atomically."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from prompts.library import Task

from ..data import Example, read_examples
from ..errors import ConfigError, DataError, StateError
from ..logs import log, shown
from ..memory import PeakMemory
from .config import LAYER_STUDENT, DistillConfig
from .student import EncoderStudent, resolve_student

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


def train_student(
    student: EncoderStudent,
    examples: Sequence[Example],
    teacher_probabilities: np.ndarray,
    config: DistillConfig,
    labelled: Sequence[Example] = (),
    progress: bool = True,
) -> list[dict]:
    """Train ``student`` on the teacher's probabilities; returns the loss history (one record per epoch).

    The loss is ``T² KL(teacher_T || student_T)`` (Hinton et al. 2015, the T² keeping gradients the
    same size across temperatures), where ``_T`` is a softmax at temperature T (the teacher's
    probabilities re-tempered as ``p^(1/T)``), mixed with ``gold_weight`` of cross-entropy on a batch
    of the labelled examples at each step when there are any."""
    generator = torch.Generator().manual_seed(config.seed)
    labels = list(student.task.labels)
    gold = [labels.index(str(e.label)) for e in labelled]
    targets = torch.tensor(teacher_probabilities, dtype=torch.float32)
    tempered = torch.softmax(targets.clamp_min(1e-12).log() / config.temperature, dim=-1)
    optimizer = torch.optim.AdamW(
        student.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    steps_per_epoch = -(-len(examples) // config.batch_size)
    total = steps_per_epoch * config.epochs
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: max(0.0, 1 - step / total))
    history = []
    student.train()
    bar = tqdm(total=total, desc="distilling", unit="step", disable=not progress)
    for epoch in range(config.epochs):
        order = torch.randperm(len(examples), generator=generator).tolist()
        losses = []
        for start in range(0, len(order), config.batch_size):
            chosen = order[start : start + config.batch_size]
            logits = student(student.batch([examples[i] for i in chosen]))
            soft = (
                F.kl_div(
                    (logits / config.temperature).log_softmax(-1), tempered[chosen], reduction="batchmean"
                )
                * config.temperature**2
            )
            loss = soft
            if gold and config.gold_weight > 0:
                picked = torch.randint(len(gold), (min(config.batch_size, len(gold)),), generator=generator)
                gold_logits = student(student.batch([labelled[i] for i in picked.tolist()]))
                hard = F.cross_entropy(gold_logits, torch.tensor([gold[i] for i in picked.tolist()]))
                loss = (1 - config.gold_weight) * soft + config.gold_weight * hard
            loss.backward()
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(loss.item())
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.4f}")
        history.append({"epoch": epoch + 1, "loss": float(np.mean(losses))})
    bar.close()
    student.eval()
    return history


def distill(
    teacher: Callable[[list[Example]], np.ndarray],
    task: Task,
    unlabelled: str | os.PathLike,
    out: str | os.PathLike,
    config: DistillConfig | None = None,
    *,
    teacher_record: list[dict] | dict,
    columns: dict[str, str] | None = None,
    labelled: Sequence[Example] = (),
    classes: list | None = None,
    progress: bool = True,
) -> dict:
    """Label ``unlabelled`` with ``teacher`` (examples -> class probabilities in the task's label order),
    train a student on them and write it to ``out``. Returns what the student's config.json records.

    Raises:
        ConfigError: a regression task, an unknown student, or a bad recipe; DataError: a bad unlabelled
            file; FileExistsError: ``out`` exists. All before any model loads.
    """
    config = config or DistillConfig()
    if config.student == LAYER_STUDENT:
        raise ConfigError(
            f"a {LAYER_STUDENT!r} student is its teacher's own model: distil it from a saved state "
            "(lmbff distill --teacher STATE, or distill_layers)"
        )
    if task.is_regression:
        raise ConfigError(f"{task.name} is a regression task; a student learns class probabilities")
    out = Path(out)
    if out.exists():
        raise FileExistsError(f"{out} already exists; choose another --out")
    resolve_student(config.student)  # an unknown student, before the teacher's model loads
    examples, digest = read_unlabelled(unlabelled, task, columns, config.max_unlabelled)
    memory = PeakMemory()
    with shown(progress):
        started = time.perf_counter()
        probabilities = np.asarray(teacher(examples), dtype=np.float64)
        if probabilities.shape != (len(examples), len(task.labels)):
            raise StateError(
                f"the teacher gave scores of shape {probabilities.shape} for {len(examples)} texts"
            )
        labelling_seconds = time.perf_counter() - started
        log.info(f"the teacher labelled {len(examples)} texts in {labelling_seconds:.0f} s")
        student = EncoderStudent.start(config.student, task, config.max_length, config.seed)
        started = time.perf_counter()
        history = train_student(student, examples, probabilities, config, labelled, progress)
        training_seconds = time.perf_counter() - started
        student_probabilities = np.exp(student.predict_log_proba(examples))
        agreement = float(np.mean(student_probabilities.argmax(1) == probabilities.argmax(1)))
        log.info(f"student and teacher agree on {agreement:.3f} of the unlabelled texts")
        record = {
            "teacher": teacher_record,
            "classes": classes if classes is not None else list(task.labels),
            "unlabelled": {"path": str(Path(unlabelled).resolve()), "sha256": digest, "texts": len(examples)},
            "agreement": agreement,
            "distill": asdict(config),
            "labelled_examples": len(labelled),
            "history": history,
            "seconds": {"teacher_labelling": labelling_seconds, "training": training_seconds},
            "peak_memory_mb": memory.peak_mb(),
        }
        student.save(out, record)
    return record


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
    if Path(out).exists():
        raise FileExistsError(f"{out} already exists; choose another --out")
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


def teacher_from_states(folders: Sequence[str | os.PathLike], progress: bool = True):
    """(teacher function, task, record) of saved states: their probabilities averaged (an ensemble, as PET
    averages its prompt models), each scored as its run scored. The states are all read and checked
    (the same task and labels) before any model loads.

    Raises:
        StateError: a folder that is not a prompt state, or states of different tasks.
    """
    from ..state import TrainedState

    if not folders:
        raise ConfigError("give at least one teacher state")
    states = [TrainedState.load(folder) for folder in folders]
    for state in states:
        check_teacher_state(state)
    task = states[0].scoring.task
    for state in states[1:]:
        if state.scoring.task.labels != task.labels or state.scoring.task.fields != task.fields:
            raise StateError(
                f"{state.folder}: its task ({list(state.scoring.task.labels)}) is not the first teacher's "
                f"({list(task.labels)}); an ensemble averages one task's probabilities"
            )
    record = teacher_record(states)

    def teacher(examples: list[Example]) -> np.ndarray:
        from ..predict import state_log_scores

        total = np.zeros((len(examples), len(task.labels)))
        loaded: dict = {}
        for state in states:
            key = state.base_name(None)
            if key not in loaded:
                loaded[key] = state.load_base(None, precision=state.precision)
            base = loaded[key]
            state.check_base(base)
            scorer = state.prompt_model(base)
            total += np.exp(state_log_scores(state, scorer, examples, progress and f"teacher {state.folder}"))
        return total / len(states)

    return teacher, task, record
