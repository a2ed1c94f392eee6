"""Several labels per example: per-label thresholds, decisions and metrics.

A multi-label task's scorer gives every label a probability (its class scores, as for any task). Each
label is then decided on its own: it is predicted where its probability reaches its own threshold,
chosen on dev as the one that maximises that label's F1 there (a label absent from dev keeps
``DEFAULT_THRESHOLD``). Where the task gives every example at least one label and no label reaches its
threshold, the label nearest to its threshold (the largest probability / threshold) is predicted.

Metrics (scikit-learn's, on indicator matrices): micro-F1 (over every (example, label) decision),
macro-F1 (the mean of the labels' F1, every label of the task counted), subset accuracy (the whole set
right) and Hamming loss (the share of wrong decisions; lower is better, so it is reported but never a
task's metric).

Written by hand: scikit-learn's ``TunedThresholdClassifierCV`` tunes one binary threshold by
cross-validation; here a threshold per label is chosen on a fixed dev split and saved with the state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn import metrics as skm

from prompts.library import Task

from .errors import ConfigError, InputError

# Without dev rows to choose on: a label is predicted when it is more probable than not (with the
# nearest label where none is and the task forbids an empty set: the single-label argmax).
DEFAULT_THRESHOLD = 0.5


@dataclass(frozen=True)
class LabelThresholds:
    """One probability threshold per label of the task (in its order), and the dev F1 of each label at
    its threshold (None for a label that kept the default)."""

    thresholds: tuple[float, ...]
    allow_empty: bool = False
    dev_f1: tuple[float | None, ...] = ()

    def decide(self, probabilities: np.ndarray) -> np.ndarray:
        """The indicator matrix (N, C) of predicted labels."""
        probabilities = np.asarray(probabilities, dtype=np.float64)
        limits = np.asarray(self.thresholds, dtype=np.float64)
        if probabilities.ndim != 2 or probabilities.shape[1] != len(limits):
            raise InputError(
                f"probabilities of shape {probabilities.shape} for {len(limits)} per-label thresholds"
            )
        chosen = probabilities >= limits
        if not self.allow_empty:
            empty = ~chosen.any(axis=1)
            if empty.any():
                nearest = (probabilities[empty] / np.maximum(limits, 1e-12)).argmax(axis=1)
                chosen[np.flatnonzero(empty), nearest] = True
        return chosen

    def to_dict(self) -> dict:
        return {
            "thresholds": [float(t) for t in self.thresholds],
            "allow_empty": self.allow_empty,
            "dev_f1": [None if f is None else float(f) for f in self.dev_f1],
        }

    @classmethod
    def from_dict(cls, data: dict) -> LabelThresholds:
        return cls(
            tuple(float(t) for t in data["thresholds"]),
            bool(data.get("allow_empty", False)),
            tuple(None if f is None else float(f) for f in data.get("dev_f1", ())),
        )

    @classmethod
    def default(cls, task: Task) -> LabelThresholds:
        return cls((DEFAULT_THRESHOLD,) * len(task.labels), task.allow_empty)


def label_indicator(task: Task, label_sets: Sequence[Sequence[str]]) -> np.ndarray:
    """The indicator matrix (N, C), columns in the task's label order.

    Raises:
        InputError: a label that is not one of the task's."""
    index = {label: j for j, label in enumerate(task.labels)}
    out = np.zeros((len(label_sets), len(task.labels)), dtype=bool)
    for i, labels in enumerate(label_sets):
        for label in labels:
            if label not in index:
                raise InputError(f"example {i}: unknown label {label!r}; the labels are {list(task.labels)}")
            out[i, index[label]] = True
    return out


def label_sets(task: Task, indicator: np.ndarray) -> list[tuple[str, ...]]:
    """Each row's labels, in the task's order."""
    return [tuple(task.labels[j] for j in np.flatnonzero(row)) for row in np.asarray(indicator, dtype=bool)]


def _best_threshold(values: np.ndarray, gold: np.ndarray) -> tuple[float, float]:
    """(threshold, F1) maximising one label's F1: every cut between two distinct probabilities is a
    candidate; of equally good cuts, the middle one (the widest margin on either side)."""
    distinct = np.unique(values)
    cuts = np.concatenate([[distinct[0] / 2], (distinct[:-1] + distinct[1:]) / 2, [(distinct[-1] + 1) / 2]])
    positives = gold.sum()
    f1 = np.empty(len(cuts))
    for n, cut in enumerate(cuts):
        predicted = values >= cut
        hits = (predicted & gold).sum()
        f1[n] = 2 * hits / (predicted.sum() + positives) if predicted.sum() + positives else 0.0
    best = np.flatnonzero(f1 >= f1.max() - 1e-12)
    pick = best[len(best) // 2]
    return float(cuts[pick]), float(f1[pick])


def choose_thresholds(
    probabilities: np.ndarray, gold: np.ndarray, allow_empty: bool = False
) -> LabelThresholds:
    """Per label, the threshold maximising its F1 on these rows (``gold``: indicator matrix); a label
    with no positive row keeps ``DEFAULT_THRESHOLD``.

    Raises:
        InputError: mismatched shapes."""
    probabilities, gold = np.asarray(probabilities, dtype=np.float64), np.asarray(gold, dtype=bool)
    if probabilities.shape != gold.shape or probabilities.ndim != 2:
        raise InputError(
            f"probabilities of shape {probabilities.shape} for gold labels of shape {gold.shape}"
        )
    thresholds, scores = [], []
    for j in range(gold.shape[1]):
        if len(gold) == 0 or not gold[:, j].any():
            thresholds.append(DEFAULT_THRESHOLD)
            scores.append(None)
            continue
        cut, f1 = _best_threshold(probabilities[:, j], gold[:, j])
        thresholds.append(cut)
        scores.append(f1)
    return LabelThresholds(tuple(thresholds), allow_empty, tuple(scores))


def thresholds_on(task: Task, examples: Sequence, probabilities: np.ndarray) -> LabelThresholds:
    """:func:`choose_thresholds` on labelled examples (each ``label`` a tuple of labels) and their
    probabilities (N, C)."""
    gold = label_indicator(task, [e.label for e in examples])
    return choose_thresholds(probabilities, gold, task.allow_empty)


def multi_label_metrics(gold: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """micro_f1, macro_f1 (every label counted, absent ones as 0), subset_accuracy, hamming_loss and
    samples_f1 (the mean over examples of their own F1) of indicator matrices."""
    gold, predicted = np.asarray(gold, dtype=bool), np.asarray(predicted, dtype=bool)
    return {
        "micro_f1": float(skm.f1_score(gold, predicted, average="micro", zero_division=0)),
        "macro_f1": float(skm.f1_score(gold, predicted, average="macro", zero_division=0)),
        "subset_accuracy": float(skm.accuracy_score(gold, predicted)),
        "hamming_loss": float(skm.hamming_loss(gold, predicted)),
        "samples_f1": float(skm.f1_score(gold, predicted, average="samples", zero_division=0)),
    }


def per_label_table(task: Task, gold: np.ndarray, predicted: np.ndarray) -> list[dict]:
    """Per label: support (examples with it), precision, recall, F1."""
    from .metrics import label_rows

    gold, predicted = np.asarray(gold, dtype=bool), np.asarray(predicted, dtype=bool)
    return label_rows(
        task, *skm.precision_recall_fscore_support(gold, predicted, average=None, zero_division=0)
    )


def soft_targets(task: Task, label_sets: Sequence[Sequence[str]]) -> np.ndarray:
    """Each example's labels as a distribution (1/|labels| on each; all zero for an empty set): the
    target of the softmax cross-entropy a multi-label task trains with."""
    indicator = label_indicator(task, label_sets).astype(np.float32)
    counts = indicator.sum(axis=1, keepdims=True)
    return np.divide(indicator, counts, out=np.zeros_like(indicator), where=counts > 0)


def check_multi_label_method(task, method: str, out_of_scope: str | None = None) -> None:
    """Refuse what a multi-label task cannot do: the classification-head baseline (one label per
    example), demonstrations (a demonstration shows one label word) and abstaining (an empty label set
    says "none of these", where the task allows one).

    Raises:
        ConfigError: naming what to do instead."""
    if method == "finetune":
        raise ConfigError(
            f"task {task.name!r} is multi-label; --method finetune trains a head that picks one label: "
            "use --method prompt"
        )
    if method == "prompt-demos":
        raise ConfigError(
            f"task {task.name!r} is multi-label; a demonstration shows one label word, so demonstrations "
            "are for single-label tasks: use --method prompt"
        )
    if out_of_scope is not None:
        raise ConfigError(
            f"task {task.name!r} is multi-label; --out-of-scope is for single-label tasks (give the task "
            "allow_empty: true and rows with no label instead)"
        )
