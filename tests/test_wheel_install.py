"""The package as a user installs it: the wheel, with only its declared dependencies (at the versions of
requirements.lock, torch pinned to the CPU build as ``make setup`` does), into a fresh virtual
environment, trains the bundled demo task on a tiny model with LoRA (whose detach imports peft: the
issue's install could not train) and predicts with the state.

It takes minutes (a fresh environment is installed), so it runs when ``LMBFF_WHEEL_CHECK=1``: CI's
``make wheel-check`` sets it. ``pytest`` alone skips it and says so."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO

pytestmark = pytest.mark.skipif(
    os.environ.get("LMBFF_WHEEL_CHECK") != "1",
    reason="installs the wheel into a fresh environment (minutes): make wheel-check (CI runs it)",
)


def _run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, **kwargs)
    assert done.returncode == 0, f"{' '.join(command)}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def test_the_wheel_installs_with_its_declared_dependencies_and_trains(tmp_path, gpt):
    wheels = tmp_path / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(REPO)])
    (wheel,) = wheels.glob("lmbff-*.whl")
    env = tmp_path / "env"
    _run([sys.executable, "-m", "venv", str(env)])
    pip = [str(env / "bin" / "python"), "-m", "pip", "install", "-q"]
    _run([*pip, "torch==2.13.0"])  # the CPU build, as make setup installs it
    # only what the wheel declares; the lock file constrains versions and adds nothing
    _run([*pip, str(wheel), "-c", str(REPO / "requirements.lock")])
    model, tokenizer = gpt
    model_dir = tmp_path / "tiny-gpt"
    model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    lmbff = str(env / "bin" / "lmbff")
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    work = tmp_path / "work"
    work.mkdir()  # not the repository: the installed package must find its own bundled data
    python = str(env / "bin" / "python")
    where = "from lmbff.paths import bundled_data_dir; print(bundled_data_dir('reviews'))"
    reviews = Path(_run([python, "-c", where], cwd=work, env=clean).stdout.strip())
    assert str(env) in str(reviews)  # the demo data inside the installed wheel
    task = str(reviews / "task.yaml")
    _run([lmbff, "split", "--task", task, "--data-dir", str(reviews), "--k", "4", "--seeds", "13", "--out",
          "split"], cwd=work, env=clean)  # fmt: skip
    _run([lmbff, "train", "--task", task, "--data-dir", "split/4-13", "--model", str(model_dir),
          "--backend", "lora", "--max-steps", "2", "--out", "run"], cwd=work, env=clean)  # fmt: skip
    (state,) = Path(work / "run").rglob("state")
    _run([lmbff, "predict", "--state", str(state), "--out", "predicted"], cwd=work, env=clean)
    assert list((work / "predicted").rglob("metrics.json"))
    imported = _run([python, "-c", "import lmbff, sys; print(lmbff.__file__)"], cwd=work,
                    env=clean).stdout  # fmt: skip
    assert str(env) in imported  # the installed package, not the repository's
