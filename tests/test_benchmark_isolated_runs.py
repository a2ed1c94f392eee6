"""The benchmarks' runs in processes of their own (benchmarks/isolated_runs.py): a child's last output
line is its result, a failed child stops the benchmark naming the run, and results are written whole."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from isolated_runs import run_in_child, save_result

CHILD = """
import json, sys
spec = json.loads(sys.argv[2])
assert sys.argv[1] == "child"
print("progress noise")
if spec.get("fail"):
    sys.exit("the run broke")
print(json.dumps({"doubled": spec["n"] * 2}))
"""


def test_a_child_result_is_its_last_line(tmp_path):
    script = tmp_path / "bench.py"
    script.write_text(CHILD)
    assert run_in_child(str(script), {"n": 21}, "doubling") == {"doubled": 42}


def test_a_failed_child_stops_the_benchmark_naming_the_run(tmp_path, capsys):
    script = tmp_path / "bench.py"
    script.write_text(CHILD)
    with pytest.raises(SystemExit) as stopped:
        run_in_child(str(script), {"n": 1, "fail": True}, "seed 13 softmax")
    assert str(stopped.value.code) == "seed 13 softmax failed (1)"
    assert "the run broke" in capsys.readouterr().err


def test_a_result_is_written_whole_and_leaves_no_staging_file(tmp_path):
    target = tmp_path / "TREC" / "13" / "joint.json"
    save_result(target, {"accuracy": 0.5})
    save_result(target, {"accuracy": 0.75})
    assert json.loads(target.read_text()) == {"accuracy": 0.75}
    assert [p.name for p in target.parent.iterdir()] == ["joint.json"]
