"""Every benchmark validates its numeric options as the CLI does: a bad value stops it at parsing, with
the option named, before a model loads or a run folder is written."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

BAD = [
    ("few_shot", ["--max-steps", "0"], "--max-steps"),
    ("few_shot", ["--learning-rate", "-1e-5"], "--learning-rate"),
    ("few_shot", ["--test-sample", "-3"], "--test-sample"),
    ("lmbff_table", ["--full-learning-rate", "nan"], "--full-learning-rate"),
    ("lmbff_table", ["--eval-every", "0"], "--eval-every"),
    ("lr_sweep", ["--max-steps", "ten"], "--max-steps"),
    ("backend_cost", ["--steps", "0"], "--steps"),
    ("backend_cost", ["--infer", "-1"], "--infer"),
    ("zero_shot", ["--batch-size", "0"], "--batch-size"),
    ("studio_latency", ["--gap", "-0.5"], "--gap"),
    ("shared_prefix", ["--repeats", "0"], "--repeats"),
    ("output_layer_chunks", ["--examples", "0"], "--examples"),
    ("events", ["--geneva-sentences", "0"], "--geneva-sentences"),
    ("search", ["--top-k", "0"], "--top-k"),
    ("multilabel", ["run", "--work", "w", "--test-sample", "-1"], "--test-sample"),
    ("multilabel", ["run", "--work", "w", "--seeds", "13,13"], "--seeds"),
    ("incremental", ["run", "--task", "TREC", "--work", "w", "--seeds", "x"], "--seeds"),
    ("incremental", ["diagnose", "--task", "TREC", "--work", "w", "--seed", "-2"], "--seed"),
    ("incremental", ["bounds", "--task", "AGNews", "--work", "w", "--seeds", "13,13"], "--seeds"),
    ("many_classes", ["run", "--setfit-max-steps", "0"], "--setfit-max-steps"),
    ("deploy", ["run", "--prune", "1.5"], "--prune"),
    ("deploy", ["run", "--layer-rate", "inf"], "--layer-rate"),
]


NO_OUT = {"shared_prefix", "studio_latency", "output_layer_chunks"}  # they only print


@pytest.mark.parametrize(("script", "argv", "option"), BAD, ids=[f"{s} {' '.join(a)}" for s, a, _ in BAD])
def test_a_bad_numeric_option_stops_the_benchmark_at_parsing(script, argv, option, capsys, tmp_path):
    module = importlib.import_module(script)
    with pytest.raises(SystemExit) as stopped:
        module.main(argv if script in NO_OUT else [*argv, "--out", str(tmp_path / "out")])
    assert stopped.value.code == 2
    message = capsys.readouterr().err
    assert f"argument {option}" in message and "expected" in message, message
    assert not (tmp_path / "out").exists()
