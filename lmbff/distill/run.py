"""Distillation: the teacher (one or more saved states, an ensemble as PET uses, or a fitted
PromptClassifier) labels unlabelled texts with its class probabilities, and a student learns them: the KL
divergence between the two at a temperature, optionally mixed with the gold labels of the labelled
examples. Everything is checked before any model loads, and the student folder is written atomically."""

from __future__ import annotations

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

from ..data import Example
from ..errors import ConfigError, StateError
from ..files import refuse_existing
from ..logs import log, shown
from ..memory import PeakMemory
from .config import LAYER_STUDENT, DistillConfig
from .losses import soft_loss, tempered_targets
from .sources import check_teacher_state, read_unlabelled, teacher_record
from .student import EncoderStudent, resolve_student


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
    tempered = tempered_targets(teacher_probabilities, config.temperature)
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
            soft = soft_loss(logits, tempered[chosen], config.temperature)
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
    refuse_existing(out)
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
        total = np.zeros((len(examples), len(task.labels)))
        loaded: dict = {}
        for state in states:
            key = state.base_name(None)
            if key not in loaded:
                loaded[key] = state.load_base(None, precision=state.precision)
            base = loaded[key]
            state.check_base(base)
            scorer = state.prompt_model(base)
            total += np.exp(state.log_scores(scorer, examples, progress and f"teacher {state.folder}"))
        return total / len(states)

    return teacher, task, record
