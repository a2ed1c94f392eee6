"""Saved states are self-contained: they score bit-identically with their task file moved, edited or
deleted and from any directory, and are refused on another base model; 0.1 states load only when their
task file is verifiably the one they were trained with."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from lmbff.classifier import PromptClassifier
from lmbff.cli import main
from lmbff.state import StateError, TrainedState

from .conftest import DEMO_DATA, tiny_bert

SPAM = """task:
  name: spam
  fields: [text_a]
  labels: [ham, spam]
templates:
  plain:
    text: "{{ text_a }} It was {{ mask }}."
    label_words: {ham: good, spam: bad}
"""
SWAPPED = SPAM.replace("{ham: good, spam: bad}", "{ham: bad, spam: good}")
TEXTS = [f"free prize call now {i}" for i in range(5)] + [f"see you at lunch {i}" for i in range(5)]
LABELS = ["spam"] * 5 + ["ham"] * 5
TINY = dict(max_steps=3, batch_size=4, eval_every=0, learning_rate=1e-2, verbose=False)


def _spam_data(folder):
    folder.mkdir(parents=True, exist_ok=True)
    rows = "".join(f"{t}\t{label}\n" for t, label in zip(TEXTS, LABELS, strict=True))
    for split in ("train", "dev", "test"):
        (folder / f"{split}.tsv").write_text("sentence\tlabel\n".replace("sentence", "text_a") + rows)
    return folder


def test_classifier_state_survives_its_yaml_being_swapped_moved_and_deleted(bert_dir, tmp_path, monkeypatch):
    """Seen: a state stored "spam.yaml" as typed; from another folder it could not load, and after the
    label words were swapped in that file every prediction silently flipped."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "spam.yaml").write_text(SPAM)
    monkeypatch.chdir(work)
    clf = PromptClassifier("spam.yaml", str(bert_dir), **TINY).fit(TEXTS, LABELS)
    expected = clf.predict_proba(TEXTS)
    clf.save(work / "saved")

    (work / "spam.yaml").write_text(SWAPPED)  # edited: the state must not notice
    assert np.array_equal(PromptClassifier.load(work / "saved").predict_proba(TEXTS), expected)
    (work / "spam.yaml").unlink()  # deleted, the folder moved, loaded from elsewhere
    shutil.move(str(work / "saved"), str(tmp_path / "moved"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    again = PromptClassifier.load(tmp_path / "moved")
    assert np.array_equal(again.predict_proba(TEXTS), expected)
    assert again.classes_.tolist() == ["ham", "spam"] and again.task_.name == "spam"
    config = json.loads((tmp_path / "moved" / "config.json").read_text())
    assert config["format"] == 2 and config["scoring"]["label_words"] == {"ham": ["good"], "spam": ["bad"]}
    assert set(config["base_model"]["fingerprint"]) == {"config", "vocabulary", "weights"}
    assert config["lmbff_version"]
    # A loaded classifier can be refit without the YAML: its task travels with it.
    assert again.fit(TEXTS, LABELS).predict(TEXTS).shape == (10,)


def test_state_on_another_base_model_is_refused(bert_dir, gpt_dir, bert_tokenizer, tmp_path):
    clf = PromptClassifier("SST-2", str(bert_dir), **TINY).fit(TEXTS, ["0", "1"] * 5)
    clf.save(tmp_path / "saved")
    with pytest.raises(StateError, match=r"trained on base model .*refused on .*their .* differ"):
        PromptClassifier.load(tmp_path / "saved", model=str(gpt_dir))
    other = tmp_path / "other-bert"  # same architecture and vocabulary, other weights
    tiny_bert(bert_tokenizer, seed=5).save_pretrained(other)
    bert_tokenizer.save_pretrained(other)
    with pytest.raises(StateError, match="their weights differ"):
        PromptClassifier.load(tmp_path / "saved", model=str(other))


def _train_spam(model_dir, out, precision="auto"):
    command = (
        f"train --task spam.yaml --data-dir data --model {model_dir} --out {out} "
        f"--max-steps 3 --eval-every 0 --batch-size 4 --learning-rate 1e-2 --precision {precision}"
    )
    assert main(command.split()) == 0


@pytest.fixture
def spam_work(tmp_path, monkeypatch):
    """A working folder with spam.yaml and its data, the current directory for the test."""
    work = tmp_path / "work"
    _spam_data(work / "data")
    (work / "spam.yaml").write_text(SPAM)
    monkeypatch.chdir(work)
    return work


def _scores(path) -> list[dict]:
    return [json.loads(line)["scores"] for line in path.read_text().splitlines()]


def test_train_state_predicts_identically_without_its_yaml_from_anywhere(
    bert_dir, tmp_path, monkeypatch, spam_work
):
    work = spam_work
    _train_spam(bert_dir, "run")
    run_predictions = [
        json.loads(line) for line in (work / "run" / "predictions.jsonl").read_text().splitlines()
    ]

    (work / "spam.yaml").write_text(SWAPPED)
    shutil.move(str(work / "run"), str(tmp_path / "moved-run"))
    (work / "spam.yaml").unlink()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    out = tmp_path / "predictions"
    assert main(["predict", "--state", str(tmp_path / "moved-run" / "state"), "--out", str(out)]) == 0
    rows = [json.loads(line) for line in (out / "moved-run" / "predictions.jsonl").read_text().splitlines()]
    assert [r["scores"] for r in rows] == [r["scores"] for r in run_predictions]
    assert [r["prediction"] for r in rows] == [r["prediction"] for r in run_predictions]
    # predict writes a run folder like any other command's, so report and RunResult read it
    from lmbff.results import RunResult

    result = RunResult.read(out / "moved-run")
    trained = RunResult.read(tmp_path / "moved-run")
    assert (result.task, result.method, result.metric) == ("spam", "prompt", "accuracy")
    assert result.test == trained.test and result.details["state"].endswith("state")
    assert main(["report", str(out), "--out", str(tmp_path / "report")]) == 0


def test_train_state_is_refused_on_another_base(bert_dir, roberta_dir, capsys, spam_work):
    _train_spam(bert_dir, "run")
    code = main(["predict", "--state", "run/state", "--model", str(roberta_dir), "--out", "p"])
    assert code == 2
    assert "refused on" in capsys.readouterr().out


def _as_legacy(state_folder, task: str):
    """Rewrite a state's config the way lmbff 0.1 wrote it: no format, scoring or base model."""
    path = state_folder / "config.json"
    config = json.loads(path.read_text())
    legacy = {"backend": config["backend"], "experiment": config["experiment"]}
    legacy["experiment"]["task"] = task
    path.write_text(json.dumps(legacy))


def test_a_legacy_state_of_an_unverifiable_task_file_is_refused_then_upgraded(bert_dir, capsys, spam_work):
    work = spam_work
    _train_spam(bert_dir, "run", precision="fp32")  # states from before precisions were all fp32
    expected = _scores(work / "run" / "predictions.jsonl")
    _as_legacy(work / "run" / "state", "spam.yaml")
    with pytest.raises(StateError, match=r"no checksum.*lmbff upgrade-state --state"):
        TrainedState.load(work / "run" / "state")
    assert main(["predict", "--state", "run/state", "--out", "p"]) == 2
    assert "lmbff upgrade-state" in capsys.readouterr().out
    assert main(["upgrade-state", "--state", "run/state", "--task", "spam.yaml"]) == 0
    assert main(["predict", "--state", "run/state", "--out", "p"]) == 0
    assert _scores(work / "p" / "run" / "predictions.jsonl") == expected


def test_a_legacy_state_of_an_unchanged_bundled_task_loads(bert_dir, tmp_path, monkeypatch):
    # states from before precisions were all fp32
    clf = PromptClassifier("SST-2", str(bert_dir), precision="fp32", **TINY).fit(TEXTS, ["0", "1"] * 5)
    expected = clf.predict_proba(TEXTS)
    clf.save(tmp_path / "saved")
    path = tmp_path / "saved" / "config.json"
    config = json.loads(path.read_text())
    settings = config["experiment"]["classifier"]
    params = settings["params"]
    legacy_settings = {  # what 0.1's PromptClassifier.save wrote
        "task": "SST-2",
        "model": str(bert_dir),
        "template": None,
        "backend": params["backend"] or "lora",
        "backend_options": {},
        "max_length": 128,
        "training": {
            k: params[k] for k in ("max_steps", "batch_size", "learning_rate", "eval_every", "seed")
        },
        "demonstrations": False,
        "train": [],
    }
    path.write_text(json.dumps({"backend": config["backend"], "experiment": {"classifier": legacy_settings}}))
    monkeypatch.chdir(tmp_path)
    again = PromptClassifier.load(tmp_path / "saved")
    assert np.allclose(again.predict_proba(TEXTS), expected)


def test_zero_shot_train_reports_raw_and_calibrated(bert_dir, tmp_path):
    from lmbff.report import find_metrics, summarize

    data = _spam_data(tmp_path / "data")
    (tmp_path / "spam.yaml").write_text(SPAM)
    out = tmp_path / "zs"
    assert (
        main(
            [
                "train",
                "--task",
                str(tmp_path / "spam.yaml"),
                "--data-dir",
                str(data),
                "--model",
                str(bert_dir),
                "--method",
                "zero-shot",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["test_calibrated"]) >= {"accuracy"} and len(metrics["content_free_probabilities"]) == 2
    assert "zero-shot + calibration" in (out / "results.md").read_text()
    row = json.loads((out / "predictions.jsonl").read_text().splitlines()[0])
    assert set(row) >= {"scores", "calibrated_scores", "prediction", "calibrated_prediction"}
    methods = {r["method"] for r in summarize(find_metrics([out]))}
    assert methods == {"zero-shot", "zero-shot + calibration"}


def test_state_of_the_demo_task_records_everything(bert_dir, tmp_path):
    """The scoring block holds what scoring needs: task, template, words and ids, mode, limits."""
    task = str(DEMO_DATA / "task.yaml")
    clf = PromptClassifier(task, str(bert_dir), **TINY).fit(TEXTS, ["positive", "negative"] * 5)
    clf.save(tmp_path / "s")
    scoring = json.loads((tmp_path / "s" / "config.json").read_text())["scoring"]
    assert scoring["task"]["labels"] == ["negative", "positive"]
    assert scoring["template_text"] and scoring["mode"] == "mask" and scoring["max_length"] == 128
    assert all(isinstance(i, int) for ids in scoring["word_ids"] for i in ids)
