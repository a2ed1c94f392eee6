"""Abstaining on out-of-scope inputs (issue 36, item 6): a confidence threshold chosen on dev, reported
as in-scope accuracy with out-of-scope recall and precision; and budgets that grow with the data
(item 4)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lmbff.classifier import PromptClassifier
from lmbff.config import EPOCH_STEP_LIMIT, TrainingArguments
from lmbff.defaults import preset_min_epochs
from lmbff.out_of_scope import OUT_OF_SCOPE, AbstainRule, choose_threshold, out_of_scope_metrics


def test_the_threshold_balances_in_scope_accuracy_and_out_of_scope_recall():
    # two in-scope rows answered right with confidence 0.9 and 0.6, one wrong at 0.5; two out-of-scope
    # rows at 0.55 and 0.52: abstaining below 0.6 keeps both right answers and rejects both outsiders
    probabilities = np.array([[0.9, 0.1], [0.4, 0.6], [0.5, 0.5], [0.55, 0.45], [0.52, 0.48]])
    gold = [0, 1, 1, OUT_OF_SCOPE, OUT_OF_SCOPE]
    rule = choose_threshold(probabilities, gold)
    assert rule.threshold == pytest.approx(0.6)
    predicted = rule.apply(probabilities)
    assert predicted.tolist() == [0, 1, OUT_OF_SCOPE, OUT_OF_SCOPE, OUT_OF_SCOPE]
    metrics = out_of_scope_metrics(predicted, gold)
    assert metrics["in_scope_accuracy"] == pytest.approx(2 / 3)
    assert metrics["out_of_scope_recall"] == 1.0
    assert metrics["out_of_scope_precision"] == pytest.approx(2 / 3)
    assert metrics["accuracy_with_out_of_scope"] == pytest.approx(4 / 5)


def test_never_abstaining_is_kept_when_abstaining_only_loses():
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.95, 0.05]])
    rule = choose_threshold(probabilities, [0, 1, OUT_OF_SCOPE])  # the outsider is the most confident
    assert rule.threshold == 0.0 and OUT_OF_SCOPE not in rule.apply(probabilities[:2]).tolist()


def test_a_threshold_needs_rows_of_both_kinds():
    with pytest.raises(ValueError, match="dev rows of both kinds: 0 out-of-scope and 2 in-scope"):
        choose_threshold(np.array([[0.9, 0.1], [0.2, 0.8]]), [0, 1])
    with pytest.raises(ValueError, match="3 gold labels"):
        choose_threshold(np.array([[0.9, 0.1]]), [0, 1, 1])


TEXTS = [f"free prize call now {i}" for i in range(4)] + [f"see you at lunch {i}" for i in range(4)]
LABELS = ["spam"] * 4 + ["ham"] * 4
OUTSIDE = [f"the capital of peru {i}" for i in range(3)]


def _spam_classifier(folder, **options) -> PromptClassifier:
    settings = dict(labels=["spam", "ham"], model=str(folder), out_of_scope="oos", max_steps=2, batch_size=4)
    return PromptClassifier(**settings, verbose=False, **options)


def test_the_estimator_abstains_saves_its_threshold_and_never_trains_on_outsiders(bert_dir, tmp_path):
    clf = _spam_classifier(bert_dir, eval_every=0)
    clf.fit(TEXTS + OUTSIDE, LABELS + ["oos"] * 3, X_dev=TEXTS + OUTSIDE, y_dev=LABELS + ["oos"] * 3)
    assert clf.classes_.tolist() == ["spam", "ham"]  # the labels given; "oos" is not a class
    assert isinstance(clf.abstain_, AbstainRule)
    probabilities = clf.predict_proba(TEXTS + OUTSIDE)
    expected = np.where(
        probabilities.max(1) < clf.abstain_.threshold, "oos", clf.classes_[probabilities.argmax(1)]
    )
    assert clf.predict(TEXTS + OUTSIDE).tolist() == expected.tolist()
    clf.save(tmp_path / "saved")
    settings = json.loads((tmp_path / "saved" / "config.json").read_text())["experiment"]["classifier"]
    assert settings["abstain"]["threshold"] == clf.abstain_.threshold
    again = PromptClassifier.load(tmp_path / "saved")
    assert again.predict(TEXTS + OUTSIDE).tolist() == expected.tolist()


def test_without_outsiders_in_dev_it_says_it_never_abstains(bert_dir):
    clf = _spam_classifier(bert_dir, eval_every=0)
    with pytest.warns(UserWarning, match="never abstains"):
        clf.fit(TEXTS, LABELS, X_dev=TEXTS, y_dev=LABELS)
    assert clf.abstain_ is None and set(clf.predict(TEXTS)) <= {"spam", "ham"}


def test_budgets_grow_with_the_data_and_a_given_step_count_is_kept():
    """Issue 36: the fast preset's 32 steps of 8 saw 256 of 616 rows (77 classes)."""
    fast = TrainingArguments(
        max_steps=32, eval_every=16, batch_size=8, min_epochs=preset_min_epochs("fast", None)
    )
    assert fast.schedule_for(616) == (77, 39)  # one epoch, evaluated twice as at 32 steps
    assert fast.schedule_for(1200) == (150, 75)
    assert fast.schedule_for(32) == (32, 16)  # LM-BFF's 16-shot tasks: already several epochs
    assert fast.schedule_for(10**6)[0] == EPOCH_STEP_LIMIT
    assert preset_min_epochs("fast", 50) == 0.0  # --max-steps given: kept as asked
    assert preset_min_epochs("lmbff", None) == 0.0
    with pytest.raises(ValueError, match="min_epochs"):
        TrainingArguments(min_epochs=-1)


def test_the_fast_preset_has_its_own_prototype_recipe_chosen_on_dev():
    from lmbff.defaults import resolve

    assert resolve("fast", None, None, None, None) == ("lora", 1e-3, 32, 16)
    assert resolve("fast", None, None, None, None, "prototype") == ("lora", 3e-3, 32, 16)
    assert resolve("fast", None, 5e-4, None, None, "prototype")[1] == 5e-4  # a rate given wins
    assert preset_min_epochs("fast", None, verbalizer="prototype") == 3.0
    assert preset_min_epochs("fast", None, verbalizer="words+prototype") == 1.0
    assert preset_min_epochs("lmbff", None, verbalizer="prototype") == 0.0


def test_similarity_thresholds_work_below_zero():
    similarities = np.array([[0.9, -0.2], [-0.3, -0.1], [-0.5, -0.6]])
    rule = choose_threshold(similarities, [0, 1, OUT_OF_SCOPE])
    assert rule.apply(similarities).tolist() == [0, 1, OUT_OF_SCOPE]


def test_a_prototype_classifier_abstains_on_whichever_score_does_better_on_dev(gpt_dir, tmp_path):
    clf = _spam_classifier(gpt_dir, verbalizer="prototype")
    clf.fit(TEXTS, LABELS, X_dev=TEXTS + OUTSIDE, y_dev=LABELS + ["oos"] * 3)
    rule = clf.abstain_
    probabilities = clf.predict_proba(TEXTS + OUTSIDE)
    similarities = clf.prototype_similarities(TEXTS + OUTSIDE)
    gold = [0] * 4 + [1] * 4 + [OUT_OF_SCOPE] * 3
    by_probability = choose_threshold(probabilities, gold)
    by_similarity = choose_threshold(similarities, gold, "similarity")
    assert rule.score == (
        "similarity" if by_similarity.dev_value > by_probability.dev_value else "probability"
    )
    assert rule.dev_value == max(by_probability.dev_value, by_similarity.dev_value)
    confidence = (similarities if rule.score == "similarity" else probabilities).max(1)
    expected = np.where(confidence < rule.threshold, "oos", clf.classes_[probabilities.argmax(1)])
    assert clf.predict(TEXTS + OUTSIDE).tolist() == expected.tolist()
    clf.save(tmp_path / "saved")
    assert PromptClassifier.load(tmp_path / "saved").predict(TEXTS + OUTSIDE).tolist() == expected.tolist()


def test_train_abstains_on_out_of_scope_rows_and_predict_keeps_the_rule(gpt_dir, tmp_path):
    """The command line: --out-of-scope-label; rows with it are not trained on, dev chooses the rule,
    test reports in-scope accuracy with out-of-scope recall and precision, and the state abstains alike."""
    from lmbff.cli import main

    def write(name, rows):
        path = tmp_path / name
        path.write_text("text\tlabel\n" + "".join(f"{t}\t{label}\n" for t, label in rows))
        return path

    rows = list(zip(TEXTS, LABELS, strict=True)) + [(t, "oos") for t in OUTSIDE]
    train, dev, test = write("train.tsv", rows), write("dev.tsv", rows), write("test.tsv", rows)
    out = tmp_path / "run"
    code = main(
        [
            "train", "--labels", "spam,ham", "--data-file", str(train), "--dev-file", str(dev),
            "--test-file", str(test), "--model", str(gpt_dir), "--out", str(out), "--max-steps", "2",
            "--batch-size", "4", "--verbalizer", "prototype", "--out-of-scope-label", "oos",
        ]
    )  # fmt: skip
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    outside = metrics["out_of_scope"]
    assert outside["label"] == "oos" and outside["out_of_scope_test_examples"] == 3
    assert outside["test_examples"] == 11 and outside["rule"]["score"] in ("probability", "similarity")
    assert set(outside) >= {"in_scope_accuracy", "out_of_scope_recall", "out_of_scope_precision"}
    assert "## Out of scope (3 of 11 test rows labelled 'oos')" in (out / "results.md").read_text()
    records = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(records) == 11 and all("prediction_with_abstention" in r for r in records)
    predicted = [r["prediction_with_abstention"] for r in records]
    gold = [r["label"] for r in records]
    recall = sum(p == g == "oos" for p, g in zip(predicted, gold, strict=True)) / 3
    assert recall == pytest.approx(outside["out_of_scope_recall"])
    saved = json.loads((out / "state" / "config.json").read_text())["scoring"]["abstain"]
    assert saved["label"] == "oos" and saved["threshold"] == outside["rule"]["threshold"]
    code = main(
        ["predict", "--state", str(out / "state"), "--data-file", str(test), "--out", str(tmp_path / "p")]
    )
    assert code == 0
    (written,) = (tmp_path / "p").glob("*/predictions.jsonl")
    again = [json.loads(line) for line in written.read_text().splitlines()]
    assert [r["prediction_with_abstention"] for r in again] == predicted


def test_out_of_scope_label_must_not_be_a_class(gpt_dir, tmp_path):
    from lmbff.cli import main

    path = tmp_path / "d.tsv"
    path.write_text(
        "text\tlabel\n" + "".join(f"{t}\t{label}\n" for t, label in zip(TEXTS, LABELS, strict=True))
    )
    code = main(
        [
            "train", "--labels", "spam,ham", "--data-file", str(path), "--test-file", str(path),
            "--model", str(gpt_dir), "--out", str(tmp_path / "r"), "--out-of-scope-label", "ham",
        ]
    )  # fmt: skip
    assert code == 2


def test_the_estimator_refuses_an_out_of_scope_label_that_is_a_class(bert_dir):
    with pytest.raises(ValueError, match="out_of_scope='ham' is one of the task's labels"):
        PromptClassifier(labels=["spam", "ham"], model=str(bert_dir), out_of_scope="ham").fit(TEXTS, LABELS)
