"""Task metrics from scikit-learn and scipy: accuracy, F1, macro-F1, MCC, Pearson and Spearman."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats
from sklearn import metrics as skm

from prompts.library import Task

MACRO_F1_AVERAGING = (
    "macro_f1 is the mean F1 over all of the task's labels, including labels absent from the scored "
    "split (they count as F1 0); scikit-learn's f1_score(average='macro') without labels= averages over "
    "the labels present in the gold labels or predictions only, and is higher when some are absent"
)


def classification_metrics(task: Task, gold: Sequence[str], predicted: Sequence[str]) -> dict[str, float]:
    """Accuracy and macro-F1 always; F1 of the positive label and MCC for binary tasks."""
    labels = list(task.labels)
    result = {
        "accuracy": float(skm.accuracy_score(gold, predicted)),
        "macro_f1": float(skm.f1_score(gold, predicted, labels=labels, average="macro", zero_division=0)),
    }
    if len(labels) == 2:
        positive = task.positive_label or labels[1]
        result["f1"] = float(
            skm.f1_score(gold, predicted, pos_label=positive, average="binary", zero_division=0)
        )
        result["mcc"] = float(skm.matthews_corrcoef(gold, predicted))
    return result


def regression_metrics(gold: Sequence[float], predicted: Sequence[float]) -> dict[str, float]:
    """Pearson and Spearman correlations (0.0 when a side is constant, where they are undefined)."""
    gold_arr, pred_arr = np.asarray(gold, dtype=float), np.asarray(predicted, dtype=float)
    if np.ptp(gold_arr) == 0 or np.ptp(pred_arr) == 0:
        return {"pearson": 0.0, "spearman": 0.0}
    return {
        "pearson": float(stats.pearsonr(gold_arr, pred_arr).statistic),
        "spearman": float(stats.spearmanr(gold_arr, pred_arr).statistic),
    }


def per_class_table(task: Task, gold: Sequence[str], predicted: Sequence[str]) -> list[dict]:
    """Per label: support, precision, recall, F1 (scikit-learn's classification report)."""
    labels = list(task.labels)
    return label_rows(
        task, *skm.precision_recall_fscore_support(gold, predicted, labels=labels, zero_division=0)
    )


def label_rows(task: Task, precision, recall, f1, support) -> list[dict]:
    """The per-class table's rows from scikit-learn's per-label arrays, in the task's label order."""
    return [
        {
            "label": label,
            "name": task.label_names.get(label, ""),
            "support": int(s),
            "precision": float(p),
            "recall": float(r),
            "f1": float(f),
        }
        for label, p, r, f, s in zip(task.labels, precision, recall, f1, support, strict=True)
    ]
