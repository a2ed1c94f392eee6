"""Issue 38: distilling a tuned prompt model into a small student (lmbff.distill), on tiny models: the
teacher is a state of a tiny BERT, the student a tiny BERT encoder with a head."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from lmbff import PromptClassifier
from lmbff.cli import main

TEXTS = [
    "a good film", "a bad film", "good acting", "bad acting", "really good", "really bad",
    "good plot", "bad plot", "so good", "so bad", "good fun", "bad fun",
]  # fmt: skip
LABELS = ["pos", "neg"] * 6


@pytest.fixture
def teacher(bert_dir, tmp_path):
    clf = PromptClassifier(
        labels=["pos", "neg"], label_words=["good", "bad"], model=str(bert_dir), max_steps=2,
        backend="bitfit", verbose=False,
    ).fit(TEXTS, LABELS)  # fmt: skip
    clf.save(tmp_path / "teacher")
    return clf, tmp_path / "teacher"


def _unlabelled(tmp_path, lines=TEXTS):
    path = tmp_path / "unlabelled.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_student_from_a_saved_state_reloads_from_a_moved_folder_and_scores_bit_identically(
    teacher, bert_dir, tmp_path, capsys
):
    _, state = teacher
    unlabelled = _unlabelled(tmp_path)
    student = str(tmp_path / "student")
    code = main(["distill", "--teacher", str(state), "--unlabelled", str(unlabelled), "--student",
                 str(bert_dir), "--epochs", "2", "--batch-size", "4", "--out", student])  # fmt: skip
    assert code == 0, capsys.readouterr().out
    config = json.loads((tmp_path / "student" / "config.json").read_text())
    assert config["kind"] == "lmbff-student" and config["unlabelled"]["texts"] == 12
    assert config["teacher"][0]["folder"] == str(state.resolve()) and config["teacher"][0]["fingerprint"]
    assert len(config["unlabelled"]["sha256"]) == 64 and 0.0 <= config["agreement"] <= 1.0
    first = PromptClassifier.load(tmp_path / "student")
    expected = first.predict_proba(TEXTS)
    shutil.move(tmp_path / "student", tmp_path / "moved")
    again = PromptClassifier.load(tmp_path / "moved")
    assert np.array_equal(again.predict_proba(TEXTS), expected)
    assert set(again.predict(TEXTS)) <= {"pos", "neg"}

    data = tmp_path / "test.tsv"
    data.write_text("text\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in zip(TEXTS, LABELS, strict=True)))
    assert main(["predict", "--state", str(tmp_path / "moved"), "--data-file", str(data), "--out",
                 str(tmp_path / "p")]) == 0  # fmt: skip
    records = [
        json.loads(line)
        for line in next((tmp_path / "p").rglob("predictions.jsonl")).read_text().splitlines()
    ]
    assert [r["prediction"] for r in records] == again.predict(TEXTS).tolist()
    metrics = json.loads(next((tmp_path / "p").rglob("metrics.json")).read_text())
    assert metrics["method"] == "student" and "accuracy" in metrics["test"]

    wrong = tmp_path / "wrong.tsv"
    wrong.write_text("sentence\tlabel\nfine\tpos\n")  # not the task's field
    capsys.readouterr()
    assert main(["predict", "--state", str(tmp_path / "moved"), "--data-file", str(wrong), "--out",
                 str(tmp_path / "p2")]) == 2  # fmt: skip
    assert "wrong.tsv" in capsys.readouterr().out


def test_the_estimator_distils_itself_and_an_ensemble_averages_its_teachers(teacher, bert_dir, tmp_path):
    clf, state = teacher
    student = clf.distill(
        _unlabelled(tmp_path), tmp_path / "student", student=str(bert_dir), epochs=1, batch_size=6
    )
    assert student.classes_.tolist() == ["pos", "neg"] and student.predict(["good"]).tolist()[0] in (
        "pos",
        "neg",
    )

    from lmbff.distill import read_unlabelled, teacher_from_states

    second = PromptClassifier(labels=["pos", "neg"], label_words=["great", "awful"], model=str(bert_dir),
                              max_steps=2, backend="bitfit", verbose=False).fit(TEXTS, LABELS)  # fmt: skip
    second.save(tmp_path / "teacher2")
    examples, _ = read_unlabelled(_unlabelled(tmp_path), clf.task_)
    one, _, _ = teacher_from_states([state], progress=False)
    two, _, _ = teacher_from_states([tmp_path / "teacher2"], progress=False)
    both, _, record = teacher_from_states([state, tmp_path / "teacher2"], progress=False)
    assert np.allclose(both(examples), (one(examples) + two(examples)) / 2) and len(record) == 2


def test_bad_inputs_are_refused_before_any_model_loads_and_nothing_is_written(
    teacher, bert_dir, tmp_path, capsys, monkeypatch
):
    from lmbff.state import TrainedState

    _, state = teacher
    monkeypatch.setattr(TrainedState, "load_base", lambda *a, **k: pytest.fail("a model loaded"))
    unlabelled = _unlabelled(tmp_path)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n")
    (tmp_path / "not-a-state").mkdir()
    cases = [
        (["--teacher", str(tmp_path / "not-a-state"), "--unlabelled", str(unlabelled)], "not-a-state"),
        (["--teacher", str(state), "--unlabelled", str(empty)], "empty.txt"),
        (["--teacher", str(state), "--unlabelled", str(tmp_path / "missing.txt")], "missing.txt"),
        (["--teacher", str(state), "--unlabelled", str(unlabelled), "--student",
          str(tmp_path / "no-encoder")], "no-encoder"),
    ]  # fmt: skip
    for arguments, named in cases:
        capsys.readouterr()
        code = main(["distill", *arguments, "--out", str(tmp_path / "student")])
        out = capsys.readouterr().out
        assert code == 2 and out.startswith("error:") and named in out, out
        assert not (tmp_path / "student").exists()
    with pytest.raises(SystemExit):
        main(
            [
                "distill",
                "--teacher",
                str(state),
                "--unlabelled",
                str(unlabelled),
                "--out",
                "x",
                "--temperature",
                "0",
            ]
        )


def test_a_student_folder_missing_a_file_is_refused_naming_it(teacher, bert_dir, tmp_path):
    from lmbff.errors import StateError

    clf, _ = teacher
    clf.distill(_unlabelled(tmp_path), tmp_path / "student", student=str(bert_dir), epochs=1)
    (tmp_path / "student" / "head.safetensors").unlink()
    with pytest.raises(StateError, match=r"missing head\.safetensors"):
        PromptClassifier.load(tmp_path / "student")


def test_an_int8_student_is_a_smaller_folder_that_reloads_bit_identically_from_a_moved_folder(
    teacher, bert_dir, tmp_path, capsys
):
    clf, _ = teacher
    fp32 = clf.distill(_unlabelled(tmp_path), tmp_path / "student", student=str(bert_dir), epochs=1)
    assert (
        main(["compress", "--student", str(tmp_path / "student"), "--int8", "--out", str(tmp_path / "int8")])
        == 0
    )
    assert "int8 student written" in capsys.readouterr().out
    assert not (tmp_path / "int8" / "encoder" / "model.safetensors").exists()  # no float weights kept
    small = PromptClassifier.load(tmp_path / "int8")
    expected = small.predict_proba(TEXTS)
    assert np.abs(expected - fp32.predict_proba(TEXTS)).max() < 0.1  # close to the float student
    shutil.move(tmp_path / "int8", tmp_path / "moved-int8")
    assert np.array_equal(PromptClassifier.load(tmp_path / "moved-int8").predict_proba(TEXTS), expected)
    config = json.loads((tmp_path / "moved-int8" / "config.json").read_text())
    assert config["compression"]["kind"] == "int8"
    capsys.readouterr()
    assert (
        main(["compress", "--student", str(tmp_path / "moved-int8"), "--int8", "--out", str(tmp_path / "x")])
        == 2
    )
    assert "already compressed" in capsys.readouterr().out and not (tmp_path / "x").exists()
