"""The benchmarks' evidence is kept as one JSON-lines file per benchmark (benchmarks/results_store.py):
packing a folder and unpacking it gives the same bytes, and every committed file unpacks."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("results_store", ROOT / "benchmarks" / "results_store.py")
store = importlib.util.module_from_spec(spec)
spec.loader.exec_module(store)


def test_a_folder_packs_and_unpacks_to_the_same_bytes(tmp_path):
    folder = tmp_path / "bench"
    run = folder / "SST-2" / "prompt" / "seed-13"
    run.mkdir(parents=True)
    (run / "metrics.json").write_text(json.dumps({"test": {"accuracy": 0.5}, "seed": 13}, indent=2) + "\n")
    (run / "config.json").write_text('{"a": 1, "b": [1, 2]}')  # compact, no newline: kept as written
    (run / "results.md").write_text("| a | b |\n|---|---|\n| 1 | 2 |\n")
    (folder / "report.md").write_text("## report\n\u00e9 \u2014 text\n")
    (run / "predictions.jsonl").write_text("{}\n")  # per example: not evidence
    (run / "state").mkdir()
    (run / "state" / "config.json").write_text("{}")  # a state: not stored
    packed = store.pack_one(folder)
    records = [json.loads(line) for line in packed.read_text().splitlines()]
    assert [r["path"] for r in records] == [
        "SST-2/prompt/seed-13/config.json", "SST-2/prompt/seed-13/metrics.json",
        "SST-2/prompt/seed-13/results.md", "report.md",
    ]  # fmt: skip
    assert records[1]["json"]["test"]["accuracy"] == 0.5  # configuration and metrics readable as JSON
    again = tmp_path / "again"
    assert store.unpack_one(packed, again) == 4
    for record in records:
        assert (again / record["path"]).read_bytes() == (folder / record["path"]).read_bytes()
    assert store.check_one(packed) == []
    (run / "results.md").write_text("changed\n")
    assert store.check_one(packed) == [f"{run / 'results.md'}: differs from {packed}"]


def test_a_stored_path_cannot_leave_its_folder(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"path": "../escape.md", "text": "x"}) + "\n")
    with pytest.raises(SystemExit, match="leaves the benchmark's folder"):
        store.unpack_one(bad, tmp_path / "out")
    assert not (tmp_path / "escape.md").exists()


def test_every_committed_store_unpacks(tmp_path):
    stores = sorted((ROOT / "benchmarks" / "results").glob("*.jsonl"))
    assert len(stores) >= 30
    total = sum(store.unpack_one(path, tmp_path / path.stem) for path in stores)
    assert total > 1700  # every run's config, metrics and results, and the reports and tables
    assert (tmp_path / "lmbff_table" / "table.md").exists()
