"""Plugins from installed packages (entry points ``lmbff.backends`` and ``lmbff.scoring_modes``): a
backend and a scoring mode of a package that is installed, never imported by the user, show up in
``--help`` and work from the shell. The package is a fake distribution: a ``*.dist-info`` folder with its
entry points beside the package on ``PYTHONPATH``, which is what ``pip install`` leaves behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import DEMO_DATA
from .test_architecture import _readme_files

pytestmark = pytest.mark.slow  # subprocesses that import torch

ENTRY_POINTS = """[lmbff.backends]
last-layer = mybackends.last_layer:LastLayerConfig

[lmbff.scoring_modes]
mask-sum = myscoring.mask_sum:MaskedSlotSum
"""


def _install_fake_distribution(root: Path) -> Path:
    """The README's backend and scoring mode as an installed distribution ``lmbff-extras`` in ``root``."""
    for path, body in _readme_files().items():
        if path.startswith(("mybackends/", "myscoring/")):
            target = root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(body)
    (root / "mybackends" / "__init__.py").write_text("")
    (root / "myscoring" / "__init__.py").write_text("")
    info = root / "lmbff_extras-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: lmbff-extras\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    return root


def _shell(args: list[str], root: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-m", "lmbff.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
    )


def test_an_installed_backend_and_mode_work_from_the_shell(tmp_path, bert):
    root = _install_fake_distribution(tmp_path / "site")
    help_text = _shell(["train", "--help"], root, tmp_path)
    assert help_text.returncode == 0 and "--last-layer-layers" in help_text.stdout
    assert "last-layer" in help_text.stdout.split("--backend")[1][:400]  # listed among the backends

    model, tokenizer = bert
    model_dir = tmp_path / "tiny-bert"
    model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    task = str(DEMO_DATA / "task.yaml")
    split = _shell(
        [
            "split",
            "--task",
            task,
            "--data-dir",
            str(DEMO_DATA),
            "--k",
            "4",
            "--seeds",
            "13",
            "--out",
            "split",
        ],
        root,
        tmp_path,
    )
    assert split.returncode == 0, split.stdout + split.stderr
    trained = _shell(
        ["train", "--task", task, "--data-dir", "split/4-13", "--model", str(model_dir), "--backend",
         "last-layer", "--last-layer-layers", "2", "--mode", "mask-sum", "--max-steps", "2", "--out", "run"],
        root,
        tmp_path,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stdout + trained.stderr
    (config,) = (tmp_path / "run").rglob("state/config.json")
    saved = json.loads(config.read_text())
    assert saved["backend"]["backend"] == "last-layer" and saved["backend"]["layers"] == 2
    assert saved["scoring"]["mode"] == "mask-sum"
    # a state made with a plugin's backend and mode predicts from the shell too
    predicted = _shell(["predict", "--state", str(config.parent), "--out", "again"], root, tmp_path)
    assert predicted.returncode == 0, predicted.stdout + predicted.stderr


def test_without_the_plugin_its_names_are_unknown_user_errors(tmp_path):
    done = _shell(["train", "--task", "SST-2", "--backend", "last-layer", "--data-dir", "d", "--out", "o"],
                  tmp_path, tmp_path)  # fmt: skip
    assert done.returncode == 2 and "unknown tuning backend 'last-layer'" in done.stdout


def test_a_broken_plugin_warns_and_the_rest_still_load(tmp_path):
    root = _install_fake_distribution(tmp_path / "site")
    broken = root / "broken-0.1.dist-info"
    broken.mkdir()
    (broken / "METADATA").write_text("Metadata-Version: 2.1\nName: broken\nVersion: 0.1\n")
    (broken / "entry_points.txt").write_text("[lmbff.backends]\nbroken = no_such_module:Config\n")
    done = _shell(["train", "--help"], root, tmp_path)
    assert done.returncode == 0 and "--last-layer-layers" in done.stdout
    assert "the plugin broken (lmbff.backends: broken) failed to load" in done.stderr
