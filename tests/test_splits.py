"""LM-BFF k-shot splits: determinism, K per class, disjoint train/dev, regression poles, checksums."""

import json
from collections import Counter

import pytest

from lmbff.data import read_examples
from lmbff.splits import lmbff_sample, make_splits, split_folder, verify_manifest
from prompts.library import load_task

from .conftest import shared_task_dir

SST2 = load_task("SST-2").task


def toy_data(tmp_path, n_per_class=40):
    folder = tmp_path / "data"
    folder.mkdir()
    rows = [f"sentence number {i} of class {i % 2}\t{i % 2}\n" for i in range(2 * n_per_class)]
    (folder / "train.tsv").write_text("text_a\tlabel\n" + "".join(rows))
    (folder / "test.tsv").write_text("text_a\tlabel\nheld out\t1\n")
    return folder


def test_splits_have_k_per_class_and_are_disjoint(tmp_path):
    data = toy_data(tmp_path)
    written = make_splits(SST2, data, tmp_path / "out", k=8, seeds=[13, 42])
    assert [s.folder.name for s in written] == ["8-13", "8-42"]
    for split in written:
        train = read_examples(split.train, SST2).examples
        dev = read_examples(split.dev, SST2).examples
        assert Counter(e.label for e in train) == {"0": 8, "1": 8}
        assert Counter(e.label for e in dev) == {"0": 8, "1": 8}
        assert not {e.fields["text_a"] for e in train} & {e.fields["text_a"] for e in dev}
        assert split.test.read_bytes() == (data / "test.tsv").read_bytes()
        assert all(verify_manifest(split.folder).values())
    first = {s.seed: s.train.read_bytes() for s in written}
    assert first[13] != first[42]


def test_splits_are_deterministic(tmp_path):
    data = toy_data(tmp_path)
    a = make_splits(SST2, data, tmp_path / "a", k=4, seeds=[21])[0]
    b = make_splits(SST2, data, tmp_path / "b", k=4, seeds=[21])[0]
    assert a.train.read_bytes() == b.train.read_bytes() and a.dev.read_bytes() == b.dev.read_bytes()
    manifest_a = json.loads((a.folder / "manifest.json").read_text())
    manifest_b = json.loads((b.folder / "manifest.json").read_text())
    assert manifest_a["files"] == manifest_b["files"]


def test_manifest_detects_a_changed_file(tmp_path):
    split = make_splits(SST2, toy_data(tmp_path), tmp_path / "out", k=4, seeds=[13])[0]
    split.train.write_text(split.train.read_text() + "extra\t1\n")
    assert verify_manifest(split.folder) == {"train.tsv": False, "dev.tsv": True, "test.tsv": True}


def test_lmbff_procedure_by_hand():
    """np.random.seed(s); np.random.shuffle(rows); groups in order of first appearance; K then K."""
    import numpy as np

    rows = [f"r{i}" for i in range(12)]
    labels = ["a", "b", "c"] * 4
    train, dev = lmbff_sample(SST2, rows, labels, k=2, seed=13)
    np.random.seed(13)
    shuffled = list(zip(rows, labels, strict=True))
    np.random.shuffle(shuffled)
    order = list(dict.fromkeys(label for _, label in shuffled))
    groups = {label: [r for r, lab in shuffled if lab == label] for label in order}
    assert train == [r for label in order for r in groups[label][:2]]
    assert dev == [r for label in order for r in groups[label][2:4]]


def test_regression_split_groups_by_threshold(tmp_path):
    sts = load_task("STS-B").task
    folder = tmp_path / "sts"
    folder.mkdir()
    scores = [0.0, 0.5, 1.0, 2.4, 2.5, 3.0, 4.0, 5.0] * 3
    (folder / "train.tsv").write_text(
        "text_a\ttext_b\tlabel\n" + "".join(f"a{i}\tb{i}\t{s}\n" for i, s in enumerate(scores))
    )
    split = make_splits(sts, folder, tmp_path / "out", k=3, seeds=[13])[0]
    train = read_examples(split.train, sts).examples
    assert sorted(e.label < 2.5 for e in train) == [False] * 3 + [True] * 3


def test_too_few_examples_per_class(tmp_path):
    with pytest.raises(ValueError, match="fewer than 2K=100"):
        make_splits(SST2, toy_data(tmp_path, n_per_class=20), tmp_path / "out", k=50, seeds=[13])


def test_split_folder_lookup(tmp_path):
    (tmp_path / "k-shot" / "16-42").mkdir(parents=True)
    assert split_folder(tmp_path, 16, 42) == tmp_path / "k-shot" / "16-42"
    with pytest.raises(FileNotFoundError, match="lmbff split"):
        split_folder(tmp_path, 16, 13)


@pytest.mark.parametrize("task", ["RTE", "STS-B"])
def test_reproduces_lmbff_official_splits(task, tmp_path):
    """RTE's and STS-B's staged train files are GLUE's, in GLUE's order: our splits equal LM-BFF's own."""
    folder = shared_task_dir(task)
    spec = load_task(task).task
    for split in make_splits(spec, folder, tmp_path, k=16, seeds=[13, 21, 42, 87, 100]):
        official = folder / "k-shot" / f"16-{split.seed}"
        for name in ("train", "dev"):
            mine = getattr(split, name).read_text().splitlines()[1:]
            theirs = (official / f"{name}.tsv").read_text().splitlines()[1:]
            assert mine == theirs, f"{task} seed {split.seed} {name}"
