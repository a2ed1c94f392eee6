"""Metrics against numbers computed by hand."""

import math

import pytest

from lmbff.metrics import classification_metrics, per_class_table, regression_metrics
from prompts.library import load_task


def test_binary_metrics_by_hand():
    task = load_task("MRPC").task  # positive label "1"
    gold = ["1", "1", "1", "0", "0", "0"]
    pred = ["1", "1", "0", "0", "0", "1"]
    m = classification_metrics(task, gold, pred)
    # tp=2 fp=1 fn=1 tn=2
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["f1"] == pytest.approx(2 / 3)
    assert m["mcc"] == pytest.approx((2 * 2 - 1 * 1) / math.sqrt(3 * 3 * 3 * 3))
    assert m["macro_f1"] == pytest.approx(2 / 3)


def test_per_class_table():
    task = load_task("SST-5").task
    table = per_class_table(task, ["0", "0", "4"], ["0", "4", "4"])
    by_label = {row["label"]: row for row in table}
    assert by_label["0"]["recall"] == 0.5 and by_label["0"]["precision"] == 1.0
    assert by_label["4"]["precision"] == 0.5 and by_label["2"]["support"] == 0


def test_regression_metrics():
    m = regression_metrics([1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 6.0, 9.0])
    assert m["spearman"] == pytest.approx(1.0)
    # dx = -1.5 -.5 .5 1.5; dy = -3.25 -1.25 .75 3.75: r = 11.5 / sqrt(5 * 26.75)
    assert m["pearson"] == pytest.approx(11.5 / math.sqrt(5 * 26.75))
    assert regression_metrics([1.0, 2.0], [3.0, 3.0]) == {"pearson": 0.0, "spearman": 0.0}


def test_macro_f1_averages_over_every_label_of_the_task_and_says_so(tmp_path):
    """Seen: 0.1651 where scikit-learn's default gave 0.1718 on the same predictions, unexplained."""
    from sklearn.metrics import f1_score

    from lmbff.metrics import classification_metrics
    from lmbff.results import RunResult
    from prompts.library import Task

    task = Task(name="t", fields=("text",), labels=("a", "b", "c"))
    gold, predicted = ["a", "a", "b"], ["a", "b", "b"]  # c is absent from this split
    ours = classification_metrics(task, gold, predicted)["macro_f1"]
    assert ours == pytest.approx(f1_score(gold, predicted, labels=["a", "b", "c"], average="macro"))
    assert ours < f1_score(gold, predicted, average="macro")
    written = RunResult("t", "zero-shot", "none", "m", "x", None, "accuracy", {"macro_f1": ours}).to_dict()
    assert "all of the task's labels" in written["metric_definitions"]["macro_f1"]
