"""Adding classes to a trained state (issue 39, part 2): new prototypes learnt against the example
memory, every old tensor kept bit for bit, the task grown and saved, and the refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lmbff.cli import main
from lmbff.state import TrainedState

WORDS = {
    "sport": ["goal", "match", "team"],
    "money": ["bank", "price", "stock"],
    "food": ["pizza", "bread", "soup"],
}


def _rows(labels, n: int, offset: int = 0) -> list[tuple[str, str]]:
    return [
        (f"{WORDS[label][i % 3]} news {offset + i} {WORDS[label][(i + 1) % 3]}", label)
        for label in labels
        for i in range(n)
    ]


def _write(path, rows) -> str:
    path.write_text("text\tlabel\n" + "".join(f"{t}\t{label}\n" for t, label in rows))
    return str(path)


@pytest.fixture(scope="module")
def first_phase(tmp_path_factory, gpt_dir):
    """A prototype run on sport and money."""
    folder = tmp_path_factory.mktemp("phase1")
    train = _write(folder / "train.tsv", _rows(["sport", "money"], 4))
    dev = _write(folder / "dev.tsv", _rows(["sport", "money"], 2, 10))
    out = folder / "run"
    code = main(
        [
            "train", "--labels", "sport,money", "--data-file", train, "--dev-file", dev, "--test-file", dev,
            "--model", str(gpt_dir), "--out", str(out), "--max-steps", "2", "--batch-size", "4",
            "--verbalizer", "prototype",
        ]
    )  # fmt: skip
    assert code == 0
    return out


def _second_phase(tmp_path, first_phase, *extra, new="food"):
    train = _write(tmp_path / "new.tsv", _rows([new] if new in WORDS else ["food"], 4, 20))
    every = _write(tmp_path / "all.tsv", _rows(["sport", "money", "food"], 2, 30))
    out = tmp_path / "run2"
    code = main(
        [
            "train", "--from-state", str(first_phase / "state"), "--new-labels", new, "--data-file", train,
            "--dev-file", every, "--test-file", every, "--out", str(out), "--new-steps", "30",
            "--new-eval-every", "10", *extra,
        ]
    )  # fmt: skip
    return code, out


def test_a_prototype_state_keeps_its_example_memory(first_phase):
    state = TrainedState.load(first_phase / "state")
    assert state.examples["features"].shape[0] == 8 and state.examples["labels"].tolist() == [0] * 4 + [1] * 4


def test_adding_a_class_keeps_every_old_tensor_and_grows_the_task(first_phase, tmp_path):
    code, out = _second_phase(tmp_path, first_phase)
    assert code == 0
    old, new = TrainedState.load(first_phase / "state"), TrainedState.load(out / "state")
    assert new.scoring.task.labels == ("sport", "money", "food")
    assert new.scoring.label_words["food"] == ["food"]
    assert set(new.tensors) == set(old.tensors)
    for name, tensor in old.tensors.items():
        if name == "lmbff_prototypes.prototypes":
            assert torch.equal(new.tensors[name][:2], tensor) and new.tensors[name].shape[0] == 3
        else:
            assert torch.equal(new.tensors[name], tensor), name  # the backbone, center and scale
    assert new.examples["labels"].tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert torch.equal(new.examples["features"][:8], old.examples["features"])
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["method"] == "new-classes" and metrics["new_labels"] == ["food"]
    assert metrics["old_classes_accuracy"] is not None and metrics["new_classes_accuracy"] is not None
    assert metrics["phase"]["memory"] is True and metrics["phase"]["memory_rows"] == 8
    records = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert set(records[0]["scores"]) == {"sport", "money", "food"}
    # predict reads the grown state as the run scored it
    assert main(["predict", "--state", str(out / "state"), "--data-file", str(tmp_path / "all.tsv"),
                 "--out", str(tmp_path / "p")]) == 0  # fmt: skip
    (written,) = (tmp_path / "p").glob("*/predictions.jsonl")
    again = [json.loads(line) for line in written.read_text().splitlines()]
    assert [r["scores"] for r in again] == [r["scores"] for r in records]
    # and classes can be added again to the grown state
    more = tmp_path / "more.tsv"
    drinks = ["tea", "coffee", "juice", "water"]
    _write(more, [(f"{w} item {i}", "drink") for i, w in enumerate(drinks)])
    code = main(["train", "--from-state", str(out / "state"), "--new-labels", "drink",
                 "--data-file", str(more), "--test-file", str(more), "--out", str(tmp_path / "run3"),
                 "--new-steps", "5"])  # fmt: skip
    assert code == 0
    third = TrainedState.load(tmp_path / "run3" / "state")
    assert third.scoring.task.labels == ("sport", "money", "food", "drink")
    assert len(third.experiment["phases"]) == 2


def test_the_example_memory_keeps_old_classes_where_the_new_prototype_alone_would_not():
    """Old classes at 0 and 180 degrees, a new class at 45 to 60 degrees, and an old row at 30 degrees:
    trained on its own examples only, the new prototype turns towards the old class and claims that
    row; with the example memory in the loss it leaves it to its class."""
    import math

    from lmbff.config import IncrementalConfig
    from lmbff.incremental import train_new_prototypes

    def at(degrees):
        return torch.tensor([math.cos(math.radians(degrees)), math.sin(math.radians(degrees))])

    old_rows, center = torch.stack([at(0), at(180)]), torch.zeros(2)
    new_rows = torch.stack([at(a) for a in (45, 50, 55, 60)])
    memory = {
        "features": torch.stack([at(a) for a in (-10, 0, 10, 20, 30, 170, 180, 190)]),
        "labels": torch.tensor([0, 0, 0, 0, 0, 1, 1, 1]),
    }
    config = IncrementalConfig(steps=200, eval_every=0)
    kept = {}
    for use in (True, False):
        rows, step, dev, _ = train_new_prototypes(
            old_rows, center, 10.0, new_rows, torch.full((4,), 2), memory if use else None, config
        )
        assert step == 200 and dev is None
        prototypes = torch.nn.functional.normalize(torch.cat([old_rows, rows]), dim=-1)
        assert ((new_rows @ prototypes.T).argmax(1) == 2).all()  # the new class is learnt either way
        kept[use] = (memory["features"] @ prototypes.T).argmax(1).tolist()
    assert kept[True] == memory["labels"].tolist()
    assert kept[False][4] == 2  # the old row at 30 degrees, claimed by the new class


def test_the_memory_can_be_left_out_to_measure_it(first_phase, tmp_path):
    code, out = _second_phase(tmp_path, first_phase, "--no-new-memory")
    assert code == 0
    phase = json.loads((out / "metrics.json").read_text())["phase"]
    assert phase["memory"] is False and phase["memory_rows"] == 8


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (["--new-labels", "money"], "'money' is already a label of task"),
        (["--new-labels", "food,food"], "--new-labels repeats a label"),
    ],
)
def test_existing_or_repeated_new_labels_are_refused(first_phase, tmp_path, capsys, change, message):
    train = _write(tmp_path / "new.tsv", _rows(["food"], 2))
    code = main(["train", "--from-state", str(first_phase / "state"), "--data-file", train,
                 "--test-file", train, "--out", str(tmp_path / "r"), *change])  # fmt: skip
    assert code == 2 and message in capsys.readouterr().out
    assert not (tmp_path / "r").exists()


def test_old_class_rows_another_base_and_another_task_are_refused(first_phase, tmp_path, capsys, bert_dir):
    mixed = _write(tmp_path / "mixed.tsv", _rows(["food", "sport"], 2))
    base = ["train", "--from-state", str(first_phase / "state"), "--new-labels", "food", "--test-file", mixed]
    assert main([*base, "--data-file", mixed, "--out", str(tmp_path / "a")]) == 2
    assert "labelled 'sport', an old class" in capsys.readouterr().out
    food = _write(tmp_path / "food.tsv", _rows(["food"], 2))
    assert main([*base, "--data-file", food, "--out", str(tmp_path / "b"), "--model", str(bert_dir)]) == 2
    assert "refused on" in capsys.readouterr().out
    other = tmp_path / "other.yaml"
    other.write_text(
        "task:\n  name: other\n  fields: [text]\n  labels: [x, y]\ntemplates:\n  t:\n"
        '    text: "{{ text }} It was {{ mask }}."\n    label_words: {x: good, y: bad}\n'
    )
    assert main([*base, "--data-file", food, "--out", str(tmp_path / "c"), "--task", str(other)]) == 2
    assert "is a state of task 'few-shot'" in capsys.readouterr().out
    assert not any((tmp_path / name).exists() for name in "abc")


def test_a_state_without_its_memory_or_scoring_by_words_and_prototypes_is_refused(
    first_phase, tmp_path, capsys
):
    import shutil

    bare = tmp_path / "bare"
    shutil.copytree(first_phase / "state", bare)
    (bare / "examples.safetensors").unlink()
    food = _write(tmp_path / "food.tsv", _rows(["food"], 2))
    command = ["train", "--new-labels", "food", "--data-file", food, "--test-file", food]
    assert main([*command, "--from-state", str(bare), "--out", str(tmp_path / "a")]) == 2
    assert "saved without its example memory" in capsys.readouterr().out
    config = json.loads((bare / "config.json").read_text())
    config["scoring"]["verbalizer"] = "words+prototype"
    (bare / "config.json").write_text(json.dumps(config))
    assert main([*command, "--from-state", str(bare), "--out", str(tmp_path / "b")]) == 2
    assert "scores by words and prototypes together" in capsys.readouterr().out


# ---- the estimator ------------------------------------------------------------------------------------
def test_partial_fit_adds_a_class_and_leaves_the_old_ones_as_they_were(bert_dir, tmp_path):
    from lmbff.classifier import PromptClassifier

    rows = _rows(["sport", "money"], 4)
    clf = PromptClassifier(
        labels=["sport", "money"], model=str(bert_dir), verbalizer="prototype", max_steps=2, batch_size=4,
        eval_every=0, verbose=False,
    )  # fmt: skip
    clf.fit([t for t, _ in rows], [y for _, y in rows])
    before = {name: t.clone() for name, t in clf.state_.tensors.items()}
    old_probabilities = clf.predict_proba(["goal news 99 match"])
    food = _rows(["food"], 4, 50)
    dev = _rows(["sport", "money", "food"], 2, 70)
    clf.partial_fit(
        [t for t, _ in food], [y for _, y in food], X_dev=[t for t, _ in dev], y_dev=[y for _, y in dev]
    )
    assert clf.classes_.tolist() == ["sport", "money", "food"]
    for name, tensor in before.items():
        now = clf.state_.tensors[name]
        assert torch.equal(now[: len(tensor)] if name.endswith("prototypes.prototypes") else now, tensor), (
            name
        )
    probabilities = clf.predict_proba(["goal news 99 match", "pizza news 3 bread"])
    assert probabilities.shape == (2, 3)
    # the old classes' scores relative to each other are unchanged: only a new class joined the softmax
    ratio_before = old_probabilities[0, 0] / old_probabilities[0, 1]
    assert probabilities[0, 0] / probabilities[0, 1] == pytest.approx(ratio_before, rel=1e-4)
    clf.save(tmp_path / "grown")
    again = PromptClassifier.load(tmp_path / "grown")
    assert again.classes_.tolist() == ["sport", "money", "food"]
    np.testing.assert_array_equal(
        again.predict_proba(["goal news 99 match", "pizza news 3 bread"]), probabilities
    )
    with pytest.raises(ValueError, match="y holds none the classifier does not know"):
        clf.partial_fit(["x"], ["sport"])
