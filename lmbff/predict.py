"""Predict with trained states: one frozen base model, any number of task states attached in turn.

Each state is scored exactly as its run scored its test set (same template, length budget,
demonstrations and seed, same batch size), so the predictions are bit-identical to the run's.
"""

from __future__ import annotations

import os
from pathlib import Path

from .config import check_precision
from .data import column_mapping, load_split
from .distill.folder import is_student
from .distill.student import load_student
from .distributed import is_main_process
from .errors import ConfigError
from .evaluate import prediction_values, results_markdown, score_examples
from .experiment import abstain_on_test, with_abstentions
from .pretrained import LoadedModel
from .results import RunResult, prediction_records
from .state import FINETUNE_STATE, StateError, TrainedState


def predict_with_states(
    states: list[str | os.PathLike],
    out: str | os.PathLike,
    *,
    data_dir: str | None = None,
    split: str = "test",
    model: str | None = None,
    precision: str | None = None,
    progress: bool = True,
    text_columns: list[str] | None = None,
    label_column: str = "label",
) -> list[dict]:
    """Score ``split`` of each state's task (from ``data_dir``, default: the state's own data) and write
    ``<out>/<name>/`` the files of every scoring run (:class:`lmbff.results.RunResult`: metrics.json,
    results.md, predictions.jsonl). Base models are loaded once and shared by every state trained on them.

    Each state scores with what it carries (task, template, label words, mode, limits, calibration,
    demonstrations); no task file is read, so this works from any directory. ``precision`` (fp32,
    bf16, auto) overrides the one each state was scored in, which is the default: a state's scores are
    then its run's, bit for bit. ``text_columns`` (one per field of each state's task, in order) and
    ``label_column`` name the data's own columns (:func:`lmbff.data.column_mapping`).

    Raises:
        StateError: a state that does not fit its base model, or cannot be scored on its own.
    """
    if precision is not None:
        check_precision(precision)
    loaded: dict[tuple, LoadedModel] = {}
    summaries = []
    names: set[str] = set()
    # every state checked before any model loads; a distilled student (lmbff.distill) is scored by itself
    opened = [None if is_student(folder) else TrainedState.load(folder) for folder in states]
    for folder, state in zip(states, opened, strict=True):
        if state is None and data_dir is None:
            raise ConfigError(f"{folder}: a student has no data of its own; pass --data-dir or --data-file")
        if state is not None and state.experiment.get("method") == "finetune":
            raise StateError(f"{state.folder}: {FINETUNE_STATE}; lmbff predict scores prompt-based states")
    for folder, state in zip(states, opened, strict=True):
        if state is None:
            name = _unique(Path(folder).resolve().name, names)
            summaries.append(
                _predict_student(folder, data_dir, split, Path(out) / name, text_columns, label_column)
            )
            continue
        wanted = precision or state.precision
        key = (*state.base_name(model), wanted)
        if key not in loaded:
            loaded[key] = state.load_base(model, precision=wanted)
        base = loaded[key]
        state.check_base(base)
        scorer = state.prompt_model(base)
        columns = column_mapping(scorer.task.fields, text_columns, label_column)
        scored = _score_state(state, scorer, data_dir or _own_data(state), split, columns, progress, folder)
        name = _unique(Path(folder).resolve().parent.name or scorer.task.name, names)
        summaries.append(_write_scored(state, scorer, base, scored, split, Path(out) / name, folder))
    return summaries


def _score_state(
    state: TrainedState, scorer, source: str, split: str, columns, progress: bool, folder
) -> dict:
    """The state's scores on ``split`` of ``source``, as its run scored (demonstrations, seed, batch
    size), and its abstentions where it carries a rule; the state is attached for the scoring only."""
    task = scorer.task
    abstain = state.scoring.abstain if state.scoring is not None else None
    outside_label = abstain["label"] if abstain else None
    examples = load_split(
        source, split, task, require_label=False, columns=columns, out_of_scope=outside_label
    ).examples
    outside = [e for e in examples if outside_label is not None and e.label == outside_label]
    examples = [e for e in examples if outside_label is None or e.label != outside_label]
    abstaining: dict | None = None

    def then(demos, seed, log_scores):
        nonlocal abstaining
        if abstain:  # the rule its run chose on dev (lmbff.out_of_scope)
            abstaining = abstain_on_test(
                outside_label, scorer, task, examples, log_scores, outside, demos, seed, rule=abstain
            )

    log_scores = state.log_scores(scorer, examples, progress and f"{task.name} ({Path(folder)})", then)
    return {"examples": examples, "log_scores": log_scores, "abstaining": abstaining, "label": outside_label}


def _scored_outputs(
    folder, task, examples: list, log_scores, split: str, name: str, target: Path, thresholds=None
):
    """(summary, predictions, results.md text) of a scoring run: metrics where every example has a gold
    label, else predictions only (a regression task's values, the labels, or a multi-label task's
    label lists, decided by ``thresholds``)."""
    summary = {"state": str(folder), "task": task.name, "metric": task.metric, "split": split,
               "examples": len(examples)}  # fmt: skip
    title = f"{task.name}: {target.name} ({split})"
    if all(e.label is not None for e in examples):
        result = score_examples(task, examples, log_scores, name, thresholds)
        summary["metrics"] = result.metrics
        return summary, result.predictions, results_markdown(task, [result], title)
    predictions = prediction_values(task, log_scores, thresholds)
    return summary, predictions, f"## {title}\n\n{len(examples)} unlabelled examples: predictions only.\n"


def _write_scored(state: TrainedState, scorer, base, scored: dict, split: str, target: Path, folder) -> dict:
    """The scoring run's files (metrics.json, results.md, predictions.jsonl) and its summary."""
    task, examples, log_scores = scorer.task, scored["examples"], scored["log_scores"]
    method = _method(state)
    backend = state.tuning.to_dict().get("backend", "") if state.tuning is not None else ""
    thresholds = state.scoring.label_thresholds() if state.scoring is not None else None
    summary, predictions, markdown = _scored_outputs(
        folder, task, examples, log_scores, split, f"{method} ({backend})", target, thresholds
    )
    settings = state.experiment.get("classifier", state.experiment)
    run = RunResult(
        task=task.name,
        method=method,
        backend=backend,
        model=base.name,
        template=scorer.template.name,
        seed=state.seed,
        metric=task.metric,
        test=summary.get("metrics", {}),
        details={
            "precision": base.precision,
            "state": str(folder),
            "split": split,
            "examples": len(examples),
            "trained": settings.get("out"),
        },
    )
    records = prediction_records(task, examples, log_scores, predictions)
    if scored["abstaining"] is not None:
        run.details["out_of_scope"] = scored["abstaining"]["metrics"]
        markdown += scored["abstaining"]["markdown"]
        records = with_abstentions(records, scored["abstaining"], scored["label"])
    if is_main_process():  # under a launcher every process has every score; the main one writes
        run.write(target, markdown=markdown, records=records)
    summary["out"] = str(target)
    return summary


def _predict_student(folder, source: str, split: str, target: Path, text_columns, label_column: str) -> dict:
    """A distilled student's scores on ``split`` of ``source``, written as any scoring run's are."""
    student, config = load_student(folder)
    task = student.task
    examples = load_split(
        source,
        split,
        task,
        require_label=False,
        columns=column_mapping(task.fields, text_columns, label_column),
    ).examples
    log_scores = student.predict_log_proba(examples)
    backend = "prompt" if config.get("student") == "prompt" else "encoder"
    method = "student" if "distill" in config else "compressed"  # a teacher compressed by lmbff compress
    distilled = config.get("distill") or {}
    summary, predictions, markdown = _scored_outputs(
        folder, task, examples, log_scores, split, f"{method} ({backend})", target
    )
    run = RunResult(
        task=task.name, method=method, backend=backend, model=distilled.get("student", str(folder)),
        template="", seed=distilled.get("seed", 0), metric=task.metric, test=summary.get("metrics", {}),
        details={"state": str(folder), "split": split, "examples": len(examples),
                 "teacher": config["teacher"], "compression": config.get("compression")},
    )  # fmt: skip
    if is_main_process():
        run.write(
            target, markdown=markdown, records=prediction_records(task, examples, log_scores, predictions)
        )
    summary["out"] = str(target)
    return summary


def _own_data(state: TrainedState) -> str:
    """The data folder the state's run read (saved absolute since format 2; as typed before)."""
    settings = state.experiment
    folder = settings.get("data_dir")
    if not folder or not Path(folder).exists():
        raise StateError(
            f"{state.folder}: the data the state was trained on ({folder!r}) is not found from here; "
            "pass --data-dir"
        )
    return folder


def _method(state: TrainedState) -> str:
    """The method the state was made by: a run's own, or the estimator's (``zero-shot`` states from
    :meth:`lmbff.classifier.PromptClassifier.zero_shot` have no tuning and no training)."""
    classifier = state.experiment.get("classifier")
    if classifier is not None:
        return str((classifier.get("params") or {}).get("method") or "prompt")
    return str(state.experiment.get("method", "prompt"))


def _unique(name: str, taken: set[str]) -> str:
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}-{n}", n + 1
    taken.add(candidate)
    return candidate
