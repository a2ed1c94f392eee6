"""Scoring across processes: under torchrun every process scores its share of the batches, and
zero-shot, predict and events write exactly what one process writes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lmbff import distributed

from .conftest import DEMO_DATA

REVIEWS = str(DEMO_DATA / "task.yaml")
EVENTS = Path(__file__).resolve().parents[1] / "data" / "events" / "fixture.jsonl"
PROBE = Path(__file__).with_name("scoring_probe.py")


def test_one_process_scores_every_batch_and_exchanges_nothing(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert distributed.world_size() == 1 and distributed.is_main_process()
    assert distributed.my_batches([[0], [1], [2]]) == [0, 1, 2]
    rows = torch.tensor([[0.5, 0.5], [0.1, 0.9]])
    out = distributed.gather_rows(torch.tensor([1, 0]), rows, 2)
    assert torch.equal(out, torch.tensor([[0.1, 0.9], [0.5, 0.5]]))


def test_batches_are_dealt_out_in_turn(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(distributed, "rank", lambda: 1)
    assert distributed.my_batches(list(range(5))) == [1, 3]
    assert distributed.my_batches(list(range(5)), wrapped=True) == [0, 1, 2, 3, 4]  # inside DDP training


def _commands(root: Path, state: Path, gpt_dir: Path) -> list[list[str]]:
    return [
        ["zero-shot", "--task", REVIEWS, "--data-dir", str(DEMO_DATA), "--model", str(gpt_dir),
         "--batch-size", "8", "--out", str(root / "zero-shot")],
        ["predict", "--state", str(state), "--data-dir", str(DEMO_DATA), "--out", str(root / "predict")],
        ["events", "--data", str(EVENTS), "--model", str(gpt_dir), "--out", str(root / "events")],
    ]  # fmt: skip


def _outputs(root: Path) -> dict[str, list[str]]:
    files = sorted(root.rglob("predictions.jsonl"))
    assert len(files) == 3, files
    return {str(f.relative_to(root)): f.read_text().splitlines() for f in files}


@pytest.mark.slow
def test_zero_shot_predict_and_events_under_torchrun_equal_one_process(gpt_dir, tmp_path):
    from lmbff.cli import main

    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        pytest.skip(f"torchrun not found beside {sys.executable}")
    run = tmp_path / "run"
    assert (
        main(f"split --task {REVIEWS} --data-dir {DEMO_DATA} --k 4 --seeds 13 --out {tmp_path}".split()) == 0
    )
    train = (
        f"train --task {REVIEWS} --data-dir {tmp_path / '4-13'} --model {gpt_dir} --out {run} --backend ln "
        "--max-steps 2 --eval-every 0 --batch-size 4 --learning-rate 1e-2"
    )
    assert main(train.split()) == 0
    one = subprocess.run(
        [sys.executable, str(PROBE), json.dumps(_commands(tmp_path / "one", run / "state", gpt_dir))],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert one.returncode == 0, one.stderr[-3000:]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    two = subprocess.run(
        [str(torchrun), "--standalone", "--nproc_per_node", "2", str(PROBE),
         json.dumps(_commands(tmp_path / "two", run / "state", gpt_dir))],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert two.returncode == 0, two.stderr[-3000:]
    assert _outputs(tmp_path / "one") == _outputs(tmp_path / "two")
    for name in ("zero-shot", "predict"):
        a = json.loads(next((tmp_path / "one" / name).rglob("metrics.json")).read_text())
        b = json.loads(next((tmp_path / "two" / name).rglob("metrics.json")).read_text())
        assert a["test"] == b["test"]
    sizes = {
        rank: sum(int(n) for r, n in re.findall(r"scored rank=(\d) size=(\d+)", two.stdout) if r == rank)
        for rank in ("0", "1")
    }
    alone = sum(int(n) for n in re.findall(r"scored rank=\d size=(\d+)", one.stdout))
    assert sizes["0"] > 0 and sizes["1"] > 0, two.stdout[-2000:]  # both processes scored
    assert sizes["0"] + sizes["1"] == alone  # and no batch was scored twice
