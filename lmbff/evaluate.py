"""Scoring examples with a PromptModel, computing the task's metrics, writing JSON + markdown results."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from prompts.library import Task

from .data import Example
from .files import atomic_write_json, markdown_table
from .metrics import MACRO_F1_AVERAGING, classification_metrics, per_class_table, regression_metrics
from .model import PromptModel, regression_prediction
from .multi_label import (
    LabelThresholds,
    label_indicator,
    label_sets,
    multi_label_metrics,
    per_label_table,
    thresholds_on,
)
from .precision import precision_of
from .scoring.calibration import apply_calibration


@dataclass
class EvalResult:
    """Metrics of one way of predicting (e.g. zero-shot, or zero-shot with calibration) on one split."""

    name: str
    task: str
    metric: str
    metrics: dict[str, float]
    num_examples: int
    per_class: list[dict] = field(default_factory=list)
    predictions: list = field(default_factory=list)

    @property
    def score(self) -> float:
        return self.metrics[self.metric]


def score_examples(
    task: Task,
    examples: Sequence[Example],
    log_scores: np.ndarray,
    name: str,
    thresholds: LabelThresholds | None = None,
) -> EvalResult:
    """Metrics for class log-scores (N, C) of labelled examples; a multi-label task's labels are decided
    by ``thresholds`` (default: :data:`lmbff.multi_label.DEFAULT_THRESHOLD` for every label)."""
    if task.multi_label:
        predicted = predicted_labels(task, log_scores, thresholds)
        gold = label_indicator(task, [e.label for e in examples])
        chosen = label_indicator(task, predicted)
        return EvalResult(
            name,
            task.name,
            task.metric,
            multi_label_metrics(gold, chosen),
            len(examples),
            per_class=per_label_table(task, gold, chosen),
            predictions=[list(p) for p in predicted],
        )
    if task.is_regression:
        predicted = regression_prediction(log_scores, task.value_range)
        gold = [float(e.label) for e in examples]
        return EvalResult(
            name,
            task.name,
            task.metric,
            regression_metrics(gold, predicted),
            len(examples),
            predictions=[float(p) for p in predicted],
        )
    labels = list(task.labels)
    predicted = [labels[i] for i in log_scores.argmax(axis=1)]
    gold = [str(e.label) for e in examples]
    return EvalResult(
        name,
        task.name,
        task.metric,
        classification_metrics(task, gold, predicted),
        len(examples),
        per_class=per_class_table(task, gold, predicted),
        predictions=predicted,
    )


@dataclass
class ZeroShotRun:
    """Everything a zero-shot evaluation measured."""

    task: str
    model: str
    template: str
    split: str
    results: list[EvalResult]
    content_free_probs: list[float]
    seconds: float
    examples_per_second: float
    config: dict = field(default_factory=dict)
    label_counts: dict = field(default_factory=dict)  # unlabelled data: {"raw"|"calibrated": {label: n}}
    peak_memory_mb: float = 0.0


def content_free_probabilities(scorer) -> np.ndarray:
    """Contextual calibration's content-free label probabilities (Zhao et al. 2021), leaving the scorer
    uncalibrated: raw and calibrated scores then come from one scoring pass (:func:`apply_calibration`).
    Shared by the zero-shot command and zero-shot runs."""
    content_free = scorer.calibrate()
    scorer.calibration = None
    return content_free


def zero_shot(
    prompt_model: PromptModel,
    task: Task,
    examples: Sequence[Example],
    *,
    batch_size: int = 16,
    progress: bool = True,
    model_name: str = "",
    template_name: str = "",
    split: str = "test",
) -> tuple[ZeroShotRun, np.ndarray]:
    """Zero-shot predictions with and without contextual calibration (one scoring pass)."""
    content_free = content_free_probabilities(prompt_model)
    start = time.perf_counter()
    log_scores = prompt_model.predict_log_scores(
        examples, batch_size=batch_size, progress=progress and "zero-shot"
    )
    seconds = time.perf_counter() - start
    calibrated = apply_calibration(log_scores, content_free)
    results, counts = [], {}
    if all(e.label is not None for e in examples):
        results = [
            score_examples(task, examples, log_scores, "zero-shot"),
            score_examples(task, examples, calibrated, "zero-shot + calibration"),
        ]
    else:  # unlabelled data: predictions only, and how often each label is predicted
        counts = {
            name: label_counts(task, predicted_labels(task, scores))
            for name, scores in (("raw", log_scores), ("calibrated", calibrated))
        }
    run = ZeroShotRun(
        task.name,
        model_name,
        template_name,
        split,
        results,
        [float(p) for p in content_free],
        seconds,
        len(examples) / max(seconds, 1e-9),
        config={
            "mode": prompt_model.mode,
            "max_length": prompt_model.encoder.max_length,
            "batch_size": batch_size,
            "precision": precision_of(prompt_model.base_lm),
            "template_text": prompt_model.template.text,
            "label_words": prompt_model.verbalizer.to_dict(),
        },
        label_counts=counts,
    )
    return run, log_scores


def predicted_labels(task: Task, log_scores: np.ndarray, thresholds: LabelThresholds | None = None):
    """The predicted label of each row (classification), the regression value, or for a multi-label
    task the tuple of each row's labels (decided by ``thresholds``, default 0.5 each)."""
    if task.is_regression:
        return regression_prediction(log_scores, task.value_range)
    if task.multi_label:
        rule = thresholds or LabelThresholds.default(task)
        return label_sets(task, rule.decide(np.exp(np.asarray(log_scores, dtype=np.float64))))
    return np.array(task.labels, dtype=object)[log_scores.argmax(axis=1)]


def prediction_texts(task: Task, log_scores: np.ndarray) -> list[str]:
    """Each row's prediction as a page shows it: the most probable label (a regression task's pole), or
    a multi-label task's labels at probability 0.5 each (a preview has no dev rows to choose thresholds
    on) joined by ", "."""
    if task.multi_label:
        return [", ".join(labels) for labels in predicted_labels(task, log_scores)]
    return [task.labels[int(i)] for i in np.asarray(log_scores).argmax(axis=1)]


def thresholds_markdown(task: Task, rule: LabelThresholds, chosen_on: str) -> str:
    """A results.md section: each label's threshold and its F1 on the rows it was chosen on."""
    rows = [
        [
            label,
            rule.thresholds[j],
            "default" if not rule.dev_f1 or rule.dev_f1[j] is None else rule.dev_f1[j],
        ]
        for j, label in enumerate(task.labels)
    ]
    return f"\n## Per-label thresholds (chosen on {chosen_on})\n\n" + markdown_table(
        ["label", "threshold", f"F1 on {chosen_on}"], rows
    )


def label_counts(task: Task, predictions) -> dict[str, int]:
    """How many rows each label is predicted for (a multi-label row counts for each of its labels)."""
    if task.multi_label:
        return {label: sum(label in p for p in predictions) for label in task.labels}
    return {label: int((np.asarray(predictions, dtype=object) == label).sum()) for label in task.labels}


def prediction_values(task: Task, log_scores: np.ndarray, thresholds: LabelThresholds | None = None) -> list:
    """Each row's prediction as a JSON value (:func:`predicted_labels`): its label, its regression value,
    or a multi-label row's list of labels (decided by ``thresholds``)."""
    predicted = predicted_labels(task, log_scores, thresholds)
    if isinstance(predicted, np.ndarray):
        return predicted.tolist()
    return [list(labels) for labels in predicted]


def dev_thresholds(task: Task, examples: Sequence[Example], log_scores: np.ndarray) -> LabelThresholds:
    """A multi-label task's per-label thresholds chosen on these (dev) rows (:mod:`lmbff.multi_label`)."""
    return thresholds_on(task, examples, np.exp(np.asarray(log_scores, dtype=np.float64)))


def results_markdown(task: Task, results: Sequence[EvalResult], title: str) -> str:
    """A summary table (every metric per result) and, for classification, per-class tables."""
    metric_names = sorted({m for r in results for m in r.metrics}, key=lambda m: (m != task.metric, m))
    text = f"## {title}\n\n" + markdown_table(
        ["method", "n", *[f"**{m}**" if m == task.metric else m for m in metric_names]],
        [[r.name, r.num_examples, *[r.metrics.get(m, float("nan")) for m in metric_names]] for r in results],
    )
    if len(task.labels) == 2 and not task.is_regression:
        positive = task.positive_label or task.labels[1]
        how = "the task's positive_label" if task.positive_label else "the second label; set positive_label"
        text += f"\nf1 is the F1 of the positive label {positive!r} ({how}).\n"
    if task.multi_label:
        text += (
            "\nMulti-label: each label is decided on its own, by its threshold chosen on dev; micro_f1 "
            "counts every (example, label) decision, subset_accuracy the examples whose whole label set is "
            "right, hamming_loss the share of wrong decisions (lower is better).\n"
        )
    elif any("macro_f1" in r.metrics for r in results):
        text += f"\n{MACRO_F1_AVERAGING}.\n"
    for r in results:
        if r.per_class:
            named = any(c["name"] for c in r.per_class)  # a column only when the task names its labels
            header = ["label", *(["name"] if named else []), "support", "precision", "recall", "f1"]
            text += f"\n### Per class: {r.name}\n\n" + markdown_table(
                header,
                [
                    [
                        c["label"],
                        *([c["name"]] if named else []),
                        c["support"],
                        c["precision"],
                        c["recall"],
                        c["f1"],
                    ]
                    for c in r.per_class
                ],
            )
    return text


def write_zero_shot(
    run: ZeroShotRun,
    task: Task,
    examples: Sequence[Example],
    log_scores: np.ndarray,
    out_dir: str | os.PathLike,
) -> list[Path]:
    """Write the run's files (:class:`lmbff.results.RunResult`: metrics.json, results.md,
    predictions.jsonl, raw and calibrated) and results.json (everything the zero-shot run measured)."""
    from .results import RunResult, prediction_records

    out = Path(out_dir)
    payload = asdict(run)
    for result in payload["results"]:
        result.pop("predictions")
    atomic_write_json(out / "results.json", payload)
    details: dict = {
        "split": run.split,
        "precision": run.config.get("precision", "fp32"),
        "content_free_probabilities": run.content_free_probs,
        "seconds": run.seconds,
        "examples_per_second": run.examples_per_second,
        "peak_memory_mb": run.peak_memory_mb,
    }
    if run.results:
        raw, calibrated = run.results
        details.update(test_calibrated=calibrated.metrics, per_class=raw.per_class)
    else:
        details["label_counts"] = run.label_counts
    result = RunResult(
        task=run.task,
        method="zero-shot",
        backend="none",
        model=run.model,
        template=run.template,
        seed=None,
        metric=task.metric,
        test=run.results[0].metrics if run.results else {},
        details=details,
    )
    title = f"{run.task} zero-shot ({run.split}, model {run.model}, template {run.template})"
    footer = (
        f"\n{len(examples)} examples in {run.seconds:.1f} s ({run.examples_per_second:.1f} examples/s); "
        f"content-free label probabilities: {[round(p, 4) for p in run.content_free_probs]}\n"
    )
    if run.results:
        body = results_markdown(task, run.results, title)
    else:
        body = f"## {title}\n\nNo gold labels: predicted labels per class.\n\n" + markdown_table(
            ["label", "raw", "calibrated"],
            [
                [label, run.label_counts["raw"][label], run.label_counts["calibrated"][label]]
                for label in task.labels
            ],
        )
    calibrated_scores = apply_calibration(log_scores, np.array(run.content_free_probs))
    records = prediction_records(
        task,
        examples,
        log_scores,
        prediction_values(task, log_scores),
        calibrated_scores,
        prediction_values(task, calibrated_scores),
    )
    result.write(out, markdown=body + footer, records=records)
    return [out / "results.json", out / "results.md", out / "predictions.jsonl", out / "metrics.json"]
