"""Adding classes to a trained state without forgetting the old ones.

Incremental Prototype Tuning (IPT) tunes category prototypes on a parameter-efficient backbone, plus
example prototypes that make up for the classifier's bias between learning phases, without replaying
old data or distilling. Here, for a state that scores by prototypes (``verbalizer: prototype``):

- The backbone's state (what the first run trained: LoRA, LN, ...) and every old prototype, the center
  and the scale stay frozen: every tensor of the old state is kept bit for bit.
- Each new class gets a prototype, started from the mean (centred, normalised) slot feature of its
  examples and trained with the cross-entropy over every class, old and new.
- The old classes are represented by the state's example memory (IPT's example prototypes: the slot
  features of a few training examples per class, kept in ``state/examples.safetensors`` when the state
  was trained). They enter the same loss with their old labels, so a new prototype that would claim an
  old class's region is pushed off it: without them, the new prototypes only ever see their own classes
  and the classifier leans towards them (the bias IPT compensates).
- Since the backbone is frozen, the slot features are computed once (one forward pass per new example)
  and the training is full-batch steps on them: seconds, whatever the model.

A state that scores by label words gets the new classes' words, and nothing trains (the words are the
classifier). The task grows (its labels, the label words) and is saved in the new state, with the
example memory grown by the new classes' examples, so classes can be added again.

Refused, before any model loads: a new label the task already has, a state from another base model, a
task file that is not the state's task, a multi-label or regression state, a state whose verbalizer
combines words and prototypes, a prototype state saved without its example memory, and training rows
labelled with an old class.

Written by hand: no kept library does class-incremental prototype tuning.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from prompts.library import Task, label_word_from_name
from prompts.verbalizer import Verbalizer

from .config import IncrementalConfig
from .errors import ConfigError, InputError, StateError


@dataclass
class IncrementalResult:
    """What a phase of new classes produced: the grown task's scoring, the tensors (the old state's,
    with the prototypes grown), the grown example memory and the training record."""

    scoring: object  # lmbff.state.ScoringSpec
    tensors: dict
    examples: dict | None
    record: dict = field(default_factory=dict)

    def phase(self) -> dict:
        """The record kept in the state's ``phases`` list: the training record without its history."""
        return {k: v for k, v in self.record.items() if k != "history"}


def grown_task(task: Task, new_labels: Sequence[str]) -> Task:
    """The task with ``new_labels`` appended.

    Raises:
        ConfigError: no new label, a repeated one, or one the task already has."""
    new = [str(label) for label in new_labels]
    if not new:
        raise ConfigError("--new-labels names no label")
    if len(set(new)) != len(new):
        raise ConfigError(f"--new-labels repeats a label: {new}")
    existing = [label for label in new if label in task.labels]
    if existing:
        raise ConfigError(
            f"{existing[0]!r} is already a label of task {task.name!r} {list(task.labels)}; new labels must "
            "be new (its prototype stays as trained)"
        )
    return replace(task, labels=(*task.labels, *new))


def new_label_words(new_labels: Sequence[str], words: Sequence[str] | dict | None) -> dict[str, list[str]]:
    """Each new label's words: given in label order or by label, else the label name as a word."""
    if words is None:
        return {label: [label_word_from_name(label)] for label in new_labels}
    if isinstance(words, dict):
        missing = [label for label in new_labels if label not in words]
        if missing or set(words) - set(new_labels):
            raise ConfigError(f"label words for {sorted(words)}, new labels {list(new_labels)}")
        return {
            label: [words[label]] if isinstance(words[label], str) else list(words[label])
            for label in new_labels
        }
    if len(words) != len(new_labels):
        raise ConfigError(f"{len(words)} label words for {len(new_labels)} new labels")
    return {label: [str(word)] for label, word in zip(new_labels, words, strict=True)}


def check_state(state, task_name: str | None = None, task_labels: Sequence[str] | None = None) -> None:
    """Raises StateError or ConfigError where classes cannot be added to ``state`` (see the module's
    docstring); ``task_name`` and ``task_labels``: a task file given beside it, which must be its task."""
    spec = state.scoring
    if spec is None:
        raise StateError(f"{state.folder}: the state records no scoring; re-save it with lmbff upgrade-state")
    task = spec.task
    if task_name is not None and (
        task_name != task.name
        or (task_labels is not None and tuple(task_labels)[: len(task.labels)] != task.labels)
    ):
        raise ConfigError(
            f"--from-state {state.folder} is a state of task {task.name!r} {list(task.labels)}, not of the "
            f"task given ({task_name!r}); classes are added to the state's own task"
        )
    if task.is_regression or task.multi_label:
        kind = "regression" if task.is_regression else "multi-label"
        raise ConfigError(
            f"{state.folder}: task {task.name!r} is {kind}; classes are added to single-label tasks"
        )
    if spec.verbalizer == "words+prototype":
        raise ConfigError(
            f"{state.folder}: the state scores by words and prototypes together; classes are added to a "
            "state that scores by prototypes (its new prototypes train) or by words (the new words score)"
        )
    if spec.verbalizer == "prototype" and not state.examples:
        raise StateError(
            f"{state.folder}: a prototype state saved without its example memory (examples.safetensors: "
            "states trained before lmbff kept one); without it the old classes would drift. Train it again"
        )
    if spec.demonstrations is not None:
        raise ConfigError(f"{state.folder}: a state with demonstrations; classes are added to prompt states")


def check_rows(train: Sequence, dev: Sequence, old: Sequence[str], grown: Sequence[str]) -> None:
    """Training rows carry new labels only; dev rows any label of the grown task.

    Raises:
        InputError: naming the first row that does not fit."""
    for example in train:
        if str(example.label) in old:
            raise InputError(
                f"{example.source or 'a training row'}: labelled {example.label!r}, an old class; a new "
                "phase trains on the new classes' rows (the old classes keep their prototypes, and the "
                "example memory keeps them in place)"
            )
        if str(example.label) not in grown:
            raise InputError(f"{example.source or 'a training row'}: unknown label {example.label!r}")
    for example in dev:
        if str(example.label) not in grown:
            raise InputError(f"{example.source or 'a dev row'}: unknown label {example.label!r}")


def add_classes(
    state,
    loaded,
    new_labels: Sequence[str],
    train: Sequence,
    dev: Sequence = (),
    *,
    label_words: Sequence[str] | dict | None = None,
    config: IncrementalConfig | None = None,
    progress: bool = False,
) -> IncrementalResult:
    """The state grown by ``new_labels``, learnt from ``train`` (rows of the new classes), the epoch
    chosen on ``dev`` (rows of any class) when given. ``state`` is a loaded :class:`lmbff.state.TrainedState`
    and ``loaded`` its base model (checked).

    Raises:
        StateError, ConfigError, InputError: as :func:`check_state`, :func:`grown_task` and
            :func:`check_rows` say."""
    import torch

    config = config or IncrementalConfig()
    check_state(state)
    state.check_base(loaded)
    spec = state.scoring
    task = grown_task(spec.task, new_labels)
    new = list(task.labels[len(spec.task.labels) :])
    check_rows(train, dev, spec.task.labels, task.labels)
    words = {**spec.label_words, **new_label_words(new, label_words)}
    scoring = _grown_spec(spec, task, words, loaded)
    record: dict = {"new_labels": new, "from_state": str(state.folder), "train_rows": len(train)}
    if spec.verbalizer == "words":
        record["trained"] = "nothing: a words state scores the new classes by their words"
        return IncrementalResult(scoring, dict(state.tensors), state.examples, record)
    if not train:
        raise InputError("no training rows for the new classes")
    missing = [label for label in new if not any(str(e.label) == label for e in train)]
    if missing:
        raise InputError(f"no training row for the new label(s) {missing}")

    scorer = state.prompt_model(loaded)
    attached = state.attach(scorer)
    try:
        features = scorer.slot_features(list(train)).float().cpu()
        dev_features = scorer.slot_features(list(dev)).float().cpu() if dev else None
    finally:
        attached.detach()
    labels = torch.tensor([task.labels.index(str(e.label)) for e in train])
    dev_labels = torch.tensor([task.labels.index(str(e.label)) for e in dev], dtype=torch.long)
    from .prototypes import MEMORY_PER_CLASS, PREFIX, bounded_scale, first_per_class

    old = {name[len(PREFIX) :]: t.float() for name, t in state.tensors.items() if name.startswith(PREFIX)}
    scale = float(bounded_scale(old["log_scale"]))
    memory = state.examples or {}
    best, best_step, best_dev, history = train_new_prototypes(
        old["prototypes"], old["center"], scale, features, labels, memory if config.memory else None,
        config, dev_features, dev_labels, progress,
    )  # fmt: skip
    tensors = dict(state.tensors)
    saved = state.tensors[PREFIX + "prototypes"]
    tensors[PREFIX + "prototypes"] = torch.cat([saved, best.to(saved.dtype)])
    kept = first_per_class(labels.tolist(), MEMORY_PER_CLASS)
    examples = {
        "features": torch.cat(
            [memory.get("features", torch.zeros(0, features.shape[1])).float(), features[kept]]
        ),
        "labels": torch.cat([memory.get("labels", torch.zeros(0, dtype=torch.long)).long(), labels[kept]]),
    }
    record.update(
        steps=config.steps, best_step=best_step, best_dev=best_dev, memory=config.memory,
        memory_rows=len(memory.get("labels", [])), history=history,
    )  # fmt: skip
    return IncrementalResult(scoring, tensors, examples, record)


def train_new_prototypes(
    old_rows, center, scale: float, features, labels, memory: dict | None, config: IncrementalConfig,
    dev_features=None, dev_labels=None, progress: bool = False,
):  # fmt: skip
    """The new classes' prototype rows (one per class index at or above ``len(old_rows)``), trained
    with the cross-entropy over every class on ``features`` (N, H) with ``labels`` (N,), and on the
    example memory's features and labels when given; the old rows, ``center`` and ``scale`` are fixed.
    Returns (rows, best step, best dev accuracy or None, history): the rows of the step with the best
    accuracy on ``dev_features``, else of the last step."""
    import torch
    from torch.nn.functional import cross_entropy
    from tqdm.auto import tqdm

    from .prototypes import centred_cosine, class_means

    old_rows, center = old_rows.float(), center.float()
    new = sorted(set(labels.tolist()) - set(range(len(old_rows))))

    def logits(rows_new, inputs):
        return scale * centred_cosine(inputs, center, torch.cat([old_rows, rows_new]))

    rows = torch.nn.Parameter(torch.stack(list(class_means(features, center, labels, new).values())))
    inputs, targets = features.float(), labels.long()
    if memory:
        inputs = torch.cat([inputs, memory["features"].float()])
        targets = torch.cat([targets, memory["labels"].long()])
    optimizer = torch.optim.AdamW([rows], lr=config.learning_rate, weight_decay=0.0)
    best, best_step, best_dev, history = rows.detach().clone(), 0, None, []
    for step in tqdm(range(1, config.steps + 1), desc="new prototypes", disable=not progress, unit="step"):
        loss = cross_entropy(logits(rows, inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if (config.eval_every and step % config.eval_every == 0) or step == config.steps:
            entry = {"step": step, "loss": float(loss.detach())}
            if dev_features is not None and len(dev_features):
                with torch.no_grad():
                    entry["dev"] = float((logits(rows, dev_features).argmax(1) == dev_labels).float().mean())
                if best_dev is None or entry["dev"] > best_dev:
                    best, best_step, best_dev = rows.detach().clone(), step, entry["dev"]
            history.append(entry)
    if best_dev is None:
        best, best_step = rows.detach().clone(), config.steps
    return best, best_step, best_dev, history


def _grown_spec(spec, task: Task, words: dict[str, list[str]], loaded):
    """The state's scoring with the grown task and label words (their token ids on this base)."""
    from prompts.template import Template, TemplateLocation

    from .model import PromptModel

    template = Template(spec.template_text, name=spec.template_name, location=TemplateLocation("<state>"))
    model = PromptModel(
        loaded.model, loaded.tokenizer, template, Verbalizer(words, task.labels), kind=loaded.kind,
        max_length=spec.max_length, field_limits=task.field_limits, truncate_side=task.truncate_side,
        mode=spec.mode,
    )  # fmt: skip
    grown = copy.deepcopy(spec)
    grown.task, grown.label_words = task, {label: list(words[label]) for label in task.labels}
    grown.word_ids = [list(ids) for ids in model.words.word_ids]
    if grown.calibration is not None:  # a calibration vector covers the old classes only
        grown.calibration = None
    return grown


def split_accuracy(
    task: Task, examples: Sequence, log_scores: np.ndarray, labels: Sequence[str]
) -> float | None:
    """Accuracy over the rows whose gold label is one of ``labels`` (predictions over every class)."""
    rows = [i for i, e in enumerate(examples) if str(e.label) in labels]
    if not rows:
        return None
    predicted = log_scores[rows].argmax(1)
    return float(
        np.mean([task.labels[p] == str(examples[i].label) for p, i in zip(predicted, rows, strict=True)])
    )


def _phase_inputs(from_state, new_labels, data_dir, splits, text_columns, label_column, task_file):
    """(the state, the grown task, its train, dev and test rows), every check made before a model loads."""
    from .data import column_mapping, load_split
    from .state import TrainedState

    state = TrainedState.load(from_state)
    given = None
    if task_file is not None:
        from prompts.library import load_task

        given = load_task(task_file).task
    check_state(state, *((given.name, given.labels) if given is not None else (None, None)))
    task = grown_task(state.scoring.task, new_labels)
    columns = column_mapping(task.fields, text_columns, label_column)
    read = {
        name: load_split(data_dir, split, task, columns=columns).examples if split else []
        for name, split in zip(("train", "dev", "test"), splits, strict=True)
    }
    check_rows(read["train"], read["dev"], state.scoring.task.labels, task.labels)
    return state, task, read


def run_new_classes(
    from_state,
    new_labels: Sequence[str],
    out,
    *,
    data_dir,
    train_split: str = "train",
    dev_split: str | None = "dev",
    test_split: str = "test",
    text_columns: list[str] | None = None,
    label_column: str = "label",
    label_words: Sequence[str] | None = None,
    model: str | None = None,
    config: IncrementalConfig | None = None,
    task_file: str | None = None,
    progress: bool = True,
) -> dict:
    """``lmbff train --from-state``: the state grown by ``new_labels``, trained on ``train_split`` (rows
    of the new classes), scored on ``test_split`` (rows of any class), written to ``out`` (whole or not at
    all): ``state/``, ``metrics.json`` (with accuracy on the old and on the new classes' rows),
    ``results.md`` and ``predictions.jsonl``. ``text_columns`` and ``label_column`` name the data's own
    columns (:func:`lmbff.data.column_mapping`). Returns the metrics.

    Raises:
        StateError, ConfigError, InputError, DataError: before any model loads (see :func:`check_state`);
            FileExistsError: ``out`` exists."""
    import time
    from pathlib import Path

    from .evaluate import results_markdown, score_examples
    from .files import refuse_existing, staged_folder
    from .memory import PeakMemory
    from .results import RunResult, prediction_records
    from .state import TrainedState, save_state

    config = config or IncrementalConfig()
    started, memory_use = time.perf_counter(), PeakMemory()
    refuse_existing(out)
    state, task, read = _phase_inputs(
        from_state, new_labels, data_dir, (train_split, dev_split, test_split), text_columns, label_column,
        task_file,
    )  # fmt: skip
    loaded = state.load_base(model)
    result = add_classes(
        state, loaded, new_labels, read["train"], read["dev"], label_words=label_words, config=config,
        progress=progress,
    )  # fmt: skip
    phases = [*state.experiment.get("phases", []), result.phase()]
    experiment = {
        **{k: v for k, v in state.experiment.items() if k != "phases"},
        "data_dir": str(Path(data_dir).resolve()),
        "phases": phases,
    }
    with staged_folder(out) as folder:
        save_state(
            folder / "state", result.tensors, state.tuning, experiment, scoring=result.scoring,
            base=state.base, examples=result.examples,
        )  # fmt: skip
        grown = TrainedState.load(folder / "state")
        scorer = grown.prompt_model(loaded)
        test = read["test"]
        log_scores = grown.log_scores(scorer, test, progress and "test")
        tested = score_examples(task, test, log_scores, "new classes added")
        old, new = state.scoring.task.labels, task.labels[len(state.scoring.task.labels) :]
        metrics = {
            "old_classes_accuracy": split_accuracy(task, test, log_scores, old),
            "new_classes_accuracy": split_accuracy(task, test, log_scores, new),
            "old_labels": list(old),
            "new_labels": list(new),
            "from_state": str(Path(from_state).resolve()),
            "phase": result.record,
            "seconds": time.perf_counter() - started,
            "peak_memory_mb": memory_use.peak_mb(),
        }
        backend = state.tuning.to_dict().get("backend", "") if state.tuning else ""
        run = RunResult(
            task=task.name, method="new-classes", backend=backend, model=loaded.name,
            template=scorer.template.name, seed=state.seed, metric=task.metric, test=tested.metrics,
            details=metrics,
        )  # fmt: skip
        markdown = results_markdown(task, [tested], f"{task.name}: classes {list(new)} added to {list(old)}")
        how = result.record.get("trained", "the new prototypes trained against the example memory")
        markdown += (
            f"\nAccuracy on the old classes' rows: {metrics['old_classes_accuracy']}; on the new classes' "
            f"rows: {metrics['new_classes_accuracy']}. Old prototypes and the backbone's state are the old "
            f"state's, bit for bit; {how}.\n"
        )
        run.write(
            folder, markdown=markdown, records=prediction_records(task, test, log_scores, tested.predictions)
        )
    return run.to_dict()
