"""Multi-label tasks (issue 39, part 1): task files, data, per-label thresholds chosen on dev and saved
with the state, metrics, k-shot splits per label, and the refusals."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from lmbff.data import read_examples
from lmbff.errors import ConfigError, DataError
from lmbff.multi_label import (
    DEFAULT_THRESHOLD,
    LabelThresholds,
    choose_thresholds,
    label_indicator,
    multi_label_metrics,
)
from prompts.library import TaskFileError, load_task_file, parse_task_text, task_file_from_labels

TASK = """\
task:
  name: feelings
  fields: [text]
  labels: [anger, joy, fear]
  multi_label: true
  label_delimiter: ","
templates:
  plain:
    text: "{{ text }} Feeling: {{ mask }}."
    label_words: {anger: angry, joy: happy, fear: scared}
"""

WORDS = {
    "anger": ["furious", "mad", "rage"],
    "joy": ["happy", "glad", "delight"],
    "fear": ["scared", "afraid"],
}


def _rows(n: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        labels = rng.sample(list(WORDS), rng.choice([1, 1, 2]))
        labels = [label for label in WORDS if label in labels]
        rows.append(
            (" ".join(rng.choice(WORDS[label]) for label in labels) + f" thing {i}", ",".join(labels))
        )
    return rows


def _write(path, rows) -> str:
    path.write_text("text\tlabel\n" + "".join(f"{t}\t{label}\n" for t, label in rows))
    return str(path)


@pytest.fixture
def task_path(tmp_path):
    path = tmp_path / "feelings.yaml"
    path.write_text(TASK)
    return path


# ---- the task file ---------------------------------------------------------------------------------
def test_a_multi_label_task_file_round_trips_through_its_dict(task_path):
    task = load_task_file(task_path).task
    assert task.multi_label and task.label_delimiter == "," and task.metric == "micro_f1"
    assert not task.allow_empty
    from prompts.task import Task

    assert Task.from_dict(json.loads(json.dumps(task.to_dict()))) == task


@pytest.mark.parametrize(
    ("change", "key", "line", "message"),
    [
        ("  metric: accuracy\n", "task.metric", 7, "scores one label per example"),
        ("  metric: hamming_loss\n", "task.metric", 7, "unknown metric 'hamming_loss'"),
        ("  allow_empty: yes\n", "task.allow_empty", 7, "expected true or false"),
    ],
)
def test_task_file_mistakes_are_located(change, key, line, message):
    text = TASK.replace('  label_delimiter: ","\n', '  label_delimiter: ","\n' + change)
    _, errors = parse_task_text(text, "f.yaml")
    assert any(e.key == key and e.line == line and message in e.message for e in errors), errors


def test_a_single_label_task_cannot_declare_multi_label_keys():
    text = TASK.replace("  multi_label: true\n", "")
    _, errors = parse_task_text(text, "f.yaml")
    assert [(e.key, e.line) for e in errors] == [("task.label_delimiter", 5)]
    assert "only a multi-label task" in errors[0].message
    _, errors = parse_task_text(TASK.replace("  multi_label: true\n", "  metric: micro_f1\n"), "f.yaml")
    assert any(e.key == "task.metric" and "multi-label metric" in e.message for e in errors)


def test_a_delimiter_inside_a_label_is_refused():
    _, errors = parse_task_text(TASK.replace("[anger, joy, fear]", '["anger,rage", joy, fear]'), "f.yaml")
    assert any(e.key == "task.label_delimiter" and "'anger,rage'" in e.message for e in errors)


def test_the_yaml_free_task_is_multi_label_too():
    task = task_file_from_labels(["a", "b"], "{{ text }} It is {{ mask }}.", multi_label=True).task
    assert task.multi_label and task.metric == "micro_f1"
    with pytest.raises(TaskFileError, match="'accuracy' does not score a multi-label task"):
        task_file_from_labels(["a", "b"], "{{ text }} It is {{ mask }}.", metric="accuracy", multi_label=True)


# ---- data --------------------------------------------------------------------------------------------
def test_rows_give_label_sets_in_the_tasks_order(task_path, tmp_path):
    task = load_task_file(task_path).task
    path = tmp_path / "d.tsv"
    path.write_text("text\tlabel\nfirst\tfear, anger\nsecond\tjoy\n")
    examples = read_examples(path, task).examples
    assert [e.label for e in examples] == [("anger", "fear"), ("joy",)]
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text('{"text": "x", "label": ["joy", "anger"]}\n')
    assert read_examples(jsonl, task).examples[0].label == ("anger", "joy")


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("x\tanger,rage", "unknown label 'rage' \\(label 2 of 2\\)"),
        ("x\t", "no label; the task gives every example at least one"),
        ("x\tanger,,joy", "label 2 of 3 is empty"),
        ("x\tjoy,joy", "the label 'joy' is given more than once"),
    ],
)
def test_bad_label_lists_are_located(task_path, tmp_path, row, message):
    task = load_task_file(task_path).task
    path = tmp_path / "d.tsv"
    path.write_text(f"text\tlabel\nfine\tjoy\n{row}\n")
    with pytest.raises(DataError, match=message) as caught:
        read_examples(path, task)
    assert caught.value.line == 3 and str(path) in str(caught.value)


def test_an_empty_list_is_an_error_unless_the_task_allows_it(task_path, tmp_path):
    task = load_task_file(task_path).task
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "fine", "label": ["joy"]}\n{"text": "none", "label": []}\n')
    with pytest.raises(DataError, match=r"d.jsonl:2.*no label; the task gives every example at least one"):
        read_examples(path, task)
    allowing = load_task_file(_allowing(task_path)).task
    assert [e.label for e in read_examples(path, allowing).examples] == [("joy",), ()]


def _allowing(task_path):
    allowing = task_path.with_name("allowing.yaml")
    allowing.write_text(TASK.replace("  multi_label: true\n", "  multi_label: true\n  allow_empty: true\n"))
    return allowing


def test_a_tsv_without_a_declared_delimiter_is_refused(task_path, tmp_path):
    text = TASK.replace('  label_delimiter: ","\n', "")
    other = tmp_path / "nodelim.yaml"
    other.write_text(text)
    path = tmp_path / "d.tsv"
    path.write_text("text\tlabel\nx\tjoy\n")
    with pytest.raises(DataError, match="does not declare"):
        read_examples(path, load_task_file(other).task)


# ---- thresholds and metrics --------------------------------------------------------------------------
def test_each_label_gets_the_threshold_that_maximises_its_dev_f1():
    probabilities = np.array([[0.9, 0.2], [0.6, 0.7], [0.3, 0.1], [0.2, 0.4]])
    gold = np.array([[1, 0], [1, 1], [0, 0], [0, 1]], dtype=bool)
    rule = choose_thresholds(probabilities, gold, allow_empty=True)
    # label 0: any cut in (0.3, 0.6] is perfect; the middle of the perfect cuts is kept
    assert rule.thresholds[0] == pytest.approx(0.45)
    assert rule.thresholds[1] == pytest.approx(0.3)  # between 0.2 and 0.4
    assert rule.dev_f1 == (1.0, 1.0)
    assert rule.decide(probabilities).tolist() == gold.tolist()


def test_a_label_absent_from_dev_keeps_the_default_and_every_row_gets_a_label():
    probabilities = np.array([[0.9, 0.05], [0.2, 0.1]])
    rule = choose_thresholds(probabilities, np.array([[1, 0], [0, 0]], dtype=bool))
    assert rule.thresholds[1] == DEFAULT_THRESHOLD and rule.dev_f1[1] is None
    decided = rule.decide(probabilities)
    assert decided.any(axis=1).all()  # the second row reaches no threshold: its nearest label is given
    assert LabelThresholds(rule.thresholds, allow_empty=True).decide(probabilities)[1].tolist() == [
        False,
        False,
    ]


def test_metrics_agree_with_counting_by_hand():
    gold = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 0]], dtype=bool)
    predicted = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0]], dtype=bool)
    metrics = multi_label_metrics(gold, predicted)
    # 3 right positives, 1 false positive, 1 missed: micro-F1 = 2*3 / (2*3 + 1 + 1)
    assert metrics["micro_f1"] == pytest.approx(6 / 8)
    assert metrics["subset_accuracy"] == pytest.approx(1 / 3)
    assert metrics["hamming_loss"] == pytest.approx(2 / 9)
    # per label F1: 1.0, 2/3, 0.0
    assert metrics["macro_f1"] == pytest.approx((1 + 2 / 3 + 0) / 3)


def test_the_indicator_refuses_an_unknown_label(task_path):
    task = load_task_file(task_path).task
    assert label_indicator(task, [("joy",), ()]).tolist() == [[False, True, False], [False, False, False]]
    with pytest.raises(ValueError, match="unknown label 'rage'"):
        label_indicator(task, [("rage",)])


# ---- splits ------------------------------------------------------------------------------------------
def test_splits_take_k_rows_per_label_reproducibly(task_path, tmp_path):
    from lmbff.splits import make_splits

    task = load_task_file(task_path).task
    data = tmp_path / "data"
    data.mkdir()
    _write(data / "train.tsv", _rows(80, 1))
    _write(data / "test.tsv", _rows(10, 2))
    first = make_splits(task, data, tmp_path / "a", k=4, seeds=[13, 21])
    again = make_splits(task, data, tmp_path / "b", k=4, seeds=[13, 21])
    assert first[0].train.read_bytes() == again[0].train.read_bytes()
    assert first[0].train.read_bytes() != first[1].train.read_bytes()
    manifest = json.loads((first[0].folder / "manifest.json").read_text())
    counts = manifest["label_counts"]
    for part, path in (("train", first[0].train), ("dev", first[0].dev)):
        examples = read_examples(path, task).examples
        for label in task.labels:
            held = sum(label in e.label for e in examples)
            assert held == counts[part][label] and held >= 4
    train = {e.fields["text"] for e in read_examples(first[0].train, task).examples}
    dev = {e.fields["text"] for e in read_examples(first[0].dev, task).examples}
    assert not train & dev


# ---- a run, its state and predict ----------------------------------------------------------------------
def _data(tmp_path):
    return (
        _write(tmp_path / "train.tsv", _rows(12, 3)),
        _write(tmp_path / "dev.tsv", _rows(9, 4)),
        _write(tmp_path / "test.tsv", _rows(8, 5)),
    )


def test_a_run_chooses_thresholds_on_dev_saves_them_and_predict_decides_alike(task_path, gpt_dir, tmp_path):
    from lmbff.cli import main
    from lmbff.state import TrainedState

    train, dev, test = _data(tmp_path)
    out = tmp_path / "run"
    code = main(
        [
            "train", "--task", str(task_path), "--data-file", train, "--dev-file", dev, "--test-file", test,
            "--model", str(gpt_dir), "--out", str(out), "--max-steps", "3", "--batch-size", "4",
            "--eval-every", "0",
        ]
    )  # fmt: skip
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["test"]) >= {"micro_f1", "macro_f1", "subset_accuracy", "hamming_loss"}
    assert metrics["metric"] == "micro_f1" and list(metrics["thresholds"]) == ["anger", "joy", "fear"]
    records = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert all(isinstance(r["prediction"], list) and isinstance(r["label"], list) for r in records)
    assert all(r["prediction"] for r in records)  # the task gives every example a label
    state = TrainedState.load(out / "state")
    saved = state.scoring.label_thresholds()
    assert list(saved.thresholds) == list(metrics["thresholds"].values())  # bit for bit through JSON
    # the thresholds decide: every prediction is the labels whose probability reaches its threshold
    for r in records:
        probabilities = np.array([r["scores"][label] for label in ("anger", "joy", "fear")])
        decided = saved.decide(probabilities[None])[0]
        assert [label for label, d in zip(("anger", "joy", "fear"), decided, strict=True) if d] == r[
            "prediction"
        ]
    code = main(["predict", "--state", str(out / "state"), "--data-file", test, "--out", str(tmp_path / "p")])
    assert code == 0
    (written,) = (tmp_path / "p").glob("*/predictions.jsonl")
    again = [json.loads(line) for line in written.read_text().splitlines()]
    assert [r["prediction"] for r in again] == [r["prediction"] for r in records]
    assert [r["scores"] for r in again] == [r["scores"] for r in records]
    assert "## Per-label thresholds (chosen on dev)" in (out / "results.md").read_text()
    assert main(["report", str(out), "--out", str(tmp_path / "report")]) == 0
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert "micro_f1" in json.dumps(report)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--method", "finetune"], "picks one label"),
        (["--method", "prompt-demos"], "a demonstration shows one label word"),
        (["--out-of-scope-label", "none"], "--out-of-scope is for single-label tasks"),
    ],
)
def test_what_a_multi_label_task_cannot_do_is_refused_before_loading(task_path, tmp_path, options, message):
    from lmbff.experiment import ExperimentConfig, run_experiment

    train, dev, test = _data(tmp_path)
    method = options[1] if options[0] == "--method" else "prompt"
    config = ExperimentConfig(
        task=str(task_path), data_dir=str(tmp_path), out=str(tmp_path / "r"), method=method,
        model="/no/such/model", train_split=train, dev_split=dev, test_split=test,
        out_of_scope=options[1] if options[0] == "--out-of-scope-label" else None,
    )  # fmt: skip
    with pytest.raises(ConfigError, match=message):
        run_experiment(config, progress=False)
    assert not (tmp_path / "r").exists()


def test_train_with_labels_and_multi_label_needs_no_task_file(gpt_dir, tmp_path):
    from lmbff.cli import main

    train, dev, test = _data(tmp_path)
    out = tmp_path / "run"
    code = main(
        [
            "train", "--labels", "anger,joy,fear", "--multi-label",
            "--template", "{{ text }} Feeling: {{ mask }}.", "--data-file", train, "--dev-file", dev,
            "--test-file", test, "--model", str(gpt_dir),
            "--out", str(out), "--max-steps", "2", "--batch-size", "4",
        ]
    )  # fmt: skip
    assert code == 0
    assert "micro_f1" in json.loads((out / "metrics.json").read_text())["test"]
    assert "multi_label: true" in (out / "task.yaml").read_text()


# ---- the estimator -------------------------------------------------------------------------------------
def _texts_and_sets(n: int, seed: int) -> tuple[list[str], list[list[str]]]:
    rows = _rows(n, seed)
    return [t for t, _ in rows], [labels.split(",") for _, labels in rows]


def _estimator(folder, **options):
    from lmbff.classifier import PromptClassifier

    settings = dict(
        labels=["anger", "joy", "fear"], multi_label=True, template="{{ text }} Feeling: {{ mask }}.",
        model=str(folder), max_steps=2, batch_size=4, eval_every=0, verbose=False,
    )  # fmt: skip
    return PromptClassifier(**{**settings, **options})


def test_the_estimator_answers_in_the_form_it_was_fitted_with(bert_dir, tmp_path):
    texts, sets = _texts_and_sets(12, 3)
    dev_texts, dev_sets = _texts_and_sets(9, 4)
    clf = _estimator(bert_dir).fit(texts, sets, X_dev=dev_texts, y_dev=dev_sets)
    predicted = clf.predict(dev_texts)
    assert isinstance(predicted, list) and all(isinstance(p, list) and p for p in predicted)
    probabilities = clf.predict_proba(dev_texts)
    assert probabilities.shape == (9, 3)
    decided = clf.thresholds_.decide(probabilities)
    assert [[c for c, d in zip(clf.classes_, row, strict=True) if d] for row in decided] == predicted
    assert 0.0 <= clf.score(dev_texts, dev_sets) <= 1.0
    clf.save(tmp_path / "saved")
    from lmbff.classifier import PromptClassifier

    again = PromptClassifier.load(tmp_path / "saved")
    assert again.thresholds_ == clf.thresholds_  # bit for bit through the state's JSON
    assert again.predict(dev_texts) == predicted
    np.testing.assert_array_equal(again.predict_proba(dev_texts), probabilities)


def test_an_indicator_matrix_in_a_pipeline_with_multilabelbinarizer(bert_dir):
    from sklearn.base import clone
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, MultiLabelBinarizer

    labels = ["anger", "joy", "fear"]
    texts, sets = _texts_and_sets(12, 3)
    dev_texts, dev_sets = _texts_and_sets(9, 4)
    binarizer = MultiLabelBinarizer(classes=labels)
    indicator = binarizer.fit_transform(sets)
    lower = FunctionTransformer(lambda rows: [t.lower() for t in rows])
    pipe = make_pipeline(lower, _estimator(bert_dir))
    pipe.fit(
        texts,
        indicator,
        promptclassifier__X_dev=dev_texts,
        promptclassifier__y_dev=binarizer.transform(dev_sets),
    )
    predicted = pipe.predict(dev_texts)
    assert (
        isinstance(predicted, np.ndarray)
        and predicted.shape == (9, 3)
        and set(np.unique(predicted)) <= {0, 1}
    )
    back = binarizer.inverse_transform(predicted)
    assert all(isinstance(row, tuple) and set(row) <= set(labels) for row in back)
    assert clone(pipe).get_params()["promptclassifier__multi_label"] is True


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (["anger"] * 4, "input 0: field 'label' is 'anger'; a multi-label task takes a list of labels"),
        ([["anger"], ["rage"], ["joy"], ["fear"]], "input 1: the label 'rage' is not a label of the task"),
        ([["anger"], [], ["joy"], ["fear"]], "input 1: no label"),
        ([["joy", "joy"], ["anger"], ["joy"], ["fear"]], "input 0: a label is given more than once"),
        (np.ones((4, 2), dtype=int), r"an indicator matrix of shape \(4, 2\) for 4 inputs and 3 labels"),
        (np.full((4, 3), 2), "input 0: an indicator matrix holds 0 and 1 only"),
    ],
)
def test_the_estimator_refuses_bad_label_sets_before_loading_a_model(labels, message):
    with pytest.raises(ValueError, match=message):
        _estimator("/no/such/model").fit(["a", "b", "c", "d"], labels)


def test_a_multi_label_zero_shot_classifier(bert_dir):
    from lmbff.classifier import PromptClassifier

    with pytest.warns(UserWarning, match="decides each label at probability 0.5"):
        clf = PromptClassifier.zero_shot(
            ["anger", "joy"], "{{ text }} Feeling: {{ mask }}.", model=str(bert_dir), multi_label=True,
            verbose=False,
        )  # fmt: skip
    assert all(row for row in clf.predict(["so happy", "so mad"]))


# ---- preview, the studio's marks and the zero-shot command -------------------------------------------------
def test_preview_and_the_zero_shot_command_show_label_sets(task_path, gpt_dir, tmp_path, capsys):
    from lmbff.cli import main

    data = tmp_path / "data"
    data.mkdir()
    _write(data / "test.tsv", _rows(6, 5))
    assert main(["templates", "preview", "--task", str(task_path), "--data-dir", str(data), "--split", "test",
                 "--model", str(gpt_dir), "--n", "3"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "of 3 right (zero-shot)" in out
    assert main(["zero-shot", "--task", str(task_path), "--data-dir", str(data), "--model", str(gpt_dir),
                 "--out", str(tmp_path / "zs")]) == 0  # fmt: skip
    metrics = json.loads((tmp_path / "zs" / "metrics.json").read_text())
    assert (
        set(metrics["test"]) >= {"micro_f1", "subset_accuracy"} and "micro_f1" in metrics["test_calibrated"]
    )
    row = json.loads((tmp_path / "zs" / "predictions.jsonl").read_text().splitlines()[0])
    assert isinstance(row["prediction"], list) and isinstance(row["calibrated_prediction"], list)


def test_the_studio_marks_a_multi_label_row_by_its_whole_set(task_path):
    from lmbff.data import Example
    from lmbff.studio.scoring import correct, predictions

    task = load_task_file(task_path).task
    log_scores = np.log(np.array([[0.6, 0.7, 0.1], [0.2, 0.3, 0.5]]))
    shown = predictions(task, log_scores)
    assert shown == ["anger, joy", "fear"]
    assert correct(task, Example({"text": "x"}, ("anger", "joy")), shown[0]) is True
    assert correct(task, Example({"text": "x"}, ("anger",)), shown[0]) is False


# ---- sigmoid prototypes ------------------------------------------------------------------------------------
def test_sigmoid_prototypes_give_each_label_its_own_probability_and_save_their_bias(
    task_path, gpt_dir, tmp_path
):
    from lmbff.cli import main
    from lmbff.state import TrainedState

    train, dev, test = _data(tmp_path)
    out = tmp_path / "run"
    code = main(
        [
            "train", "--task", str(task_path), "--data-file", train, "--dev-file", dev, "--test-file", test,
            "--model", str(gpt_dir), "--out", str(out), "--max-steps", "3", "--batch-size", "4",
            "--verbalizer", "prototype", "--prototype-activation", "sigmoid",
        ]
    )  # fmt: skip
    assert code == 0
    records = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    totals = [sum(r["scores"].values()) for r in records]
    assert all(0 < t < 3 for t in totals) and not all(abs(t - 1) < 1e-4 for t in totals)
    state = TrainedState.load(out / "state")
    assert state.tensors["lmbff_prototypes.bias"].shape == (3,)
    assert state.scoring.prototypes["activation"] == "sigmoid"
    assert (
        main(["predict", "--state", str(out / "state"), "--data-file", test, "--out", str(tmp_path / "p")])
        == 0
    )
    (written,) = (tmp_path / "p").glob("*/predictions.jsonl")
    again = [json.loads(line) for line in written.read_text().splitlines()]
    assert [r["scores"] for r in again] == [r["scores"] for r in records]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"verbalizer": "words"}, "verbalizer 'words' has no prototypes"),
        ({"verbalizer": "words+prototype"}, "combines them with the words' softmax"),
        ({"labels": ["a", "b"], "multi_label": False}, "has one label per example"),
        ({"calibrate": True}, "calibrate=True renormalises"),
    ],
)
def test_sigmoid_prototypes_are_refused_where_they_do_not_fit(options, message):
    settings = {"verbalizer": "prototype", "prototype_options": {"activation": "sigmoid"}, **options}
    y = [["anger"], ["joy"]] if settings.get("multi_label", True) else ["a", "b"]
    with pytest.raises(ValueError, match=message):
        _estimator("/no/such/model", **settings).fit(["x", "y"], y)


def test_the_zero_shot_command_takes_labels_and_multi_label_without_a_task_file(gpt_dir, tmp_path):
    from lmbff.cli import main

    data = _write(tmp_path / "rows.tsv", _rows(5, 6))
    out = tmp_path / "zs"
    code = main(
        [
            "zero-shot", "--labels", "anger,joy,fear", "--multi-label", "--template",
            "{{ text }} Feeling: {{ mask }}.", "--data-file", data, "--model", str(gpt_dir),
            "--out", str(out),
        ]
    )  # fmt: skip
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["metric"] == "micro_f1" and "hamming_loss" in metrics["test"]
    with pytest.raises(TaskFileError, match="only a multi-label task splits its label field"):
        task_file_from_labels(["a", "b"], "{{ text }} It is {{ mask }}.", label_delimiter=",")
