"""The search benchmark on a tiny causal LM: each (template, label words) pair is scored on the test
set once, across seeds and across resumed runs, and a cached score is the score a fresh one gives."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

SPEC = importlib.util.spec_from_file_location(
    "search_benchmark", Path(__file__).resolve().parent.parent / "benchmarks" / "search.py"
)
search_benchmark = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(search_benchmark)

REVIEWS = Path(__file__).resolve().parent.parent / "data" / "reviews"


def _sst2_root(tmp_path: Path, seeds: list[int]) -> Path:
    """LM-BFF's layout with the shipped reviews as SST-2: one split, copied under every seed, so every
    seed finds the same words and template."""
    gold = {"negative": "0", "positive": "1"}
    rows = [line.rsplit("\t", 1) for line in (REVIEWS / "train.tsv").read_text().splitlines()[1:]]
    body = "".join(f"{text}\t{gold[label]}\n" for text, label in rows)
    body = "text_a\tlabel\n" + body
    root = tmp_path / "data"
    (root / "SST-2").mkdir(parents=True)
    (root / "SST-2" / "test.tsv").write_text(body)
    for seed in seeds:
        split = root / "SST-2" / "k-shot" / f"16-{seed}"
        split.mkdir(parents=True)
        (split / "train.tsv").write_text(body)
        (split / "dev.tsv").write_text(body)
    return root


def test_a_pair_is_scored_on_the_test_set_once_across_seeds_and_resumes(tmp_path, gpt_dir, monkeypatch):
    root = _sst2_root(tmp_path, [13, 21, 42])
    scored = []
    real = search_benchmark.zero_shot

    def counting(loaded, task, template, label_words, examples):
        scored.append((template.text, json.dumps(label_words, sort_keys=True)))
        return real(loaded, task, template, label_words, examples)

    monkeypatch.setattr(search_benchmark, "zero_shot", counting)
    out = tmp_path / "out"
    common = ["--data-root", str(root), "--tasks", "SST-2", "--model", str(gpt_dir), "--top-k", "5"]
    assert search_benchmark.main([*common, "--seeds", "13,21", "--out", str(out)]) == 0
    first = json.loads((out / "results.json").read_text())
    assert [r["seed"] for r in first] == [13, 21]
    assert len(scored) == len(set(scored)) <= 3  # manual, found words, found template: once each
    assert first[1] | {"seed": 13, "label_search_seconds": 0, "template_search_seconds": 0} == first[0] | {
        "label_search_seconds": 0,
        "template_search_seconds": 0,
    }

    before = len(scored)
    assert search_benchmark.main([*common, "--seeds", "13,21,42", "--out", str(out)]) == 0
    assert len(scored) == before  # the resumed run re-scores nothing: seed 42 finds the same pair
    results = json.loads((out / "results.json").read_text())
    assert [r["seed"] for r in results] == [13, 21, 42]
    for key in ("manual", "auto_labels", "auto_template", "label_words", "template"):
        assert results[2][key] == first[0][key]

    # The cached numbers are what scoring gives: a fresh run without the cache agrees.
    fresh = tmp_path / "fresh"
    assert search_benchmark.main([*common, "--seeds", "42", "--out", str(fresh)]) == 0
    again = json.loads((fresh / "results.json").read_text())[0]
    for key in ("manual", "auto_labels", "auto_template"):
        assert again[key] == results[2][key]
    table = (out / "results.md").read_text()
    assert "| SST-2 | accuracy | 13,21,42 |" in table
    assert table.count(f"`{results[0]['template']}`") == 3  # one detail row per seed


def test_the_table_is_written_after_each_seed(tmp_path):
    record = {
        "task": "SST-2",
        "manual": 0.5,
        "auto_labels": 0.75,
        "label_words": {"0": "bad", "1": "good"},
        "label_search_seconds": 10.0,
        "auto_template": 0.6,
        "template": "{{ text_a | lower_first }} It was {{ mask }}.",
        "template_search_seconds": 30.0,
    }
    results = [record | {"seed": 13}, record | {"seed": 21, "auto_labels": 0.85}]
    table = search_benchmark.write_tables(results, tmp_path, "tiny")
    written = (tmp_path / "results.md").read_text()
    assert table in written
    assert "| SST-2 | accuracy | 13,21 | 50.0 (0.0) | 80.0 (5.0) | 10 | 60.0 (0.0) | 30 |" in table
    assert "`{{ text_a \\| lower_first }} It was {{ mask }}.`" in written  # the pipe escaped
    assert "0: bad, 1: good | 85.0 |" in written
    cola = search_benchmark.write_tables([record | {"task": "CoLA", "seed": 13}], tmp_path, "tiny")
    assert "| CoLA | mcc | 13 |" in cola  # CoLA is scored by Matthews correlation, and says so
