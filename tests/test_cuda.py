"""On a CUDA GPU (skipped without one; CI has none): ``auto`` picks bf16 where the GPU multiplies it
natively, scores on the GPU agree with the CPU's in fp32 and stay close in bf16, and an interrupted run
resumes to the same weights, bit for bit, as one that never stopped, in fp32 and in bf16. Run on an
H200 with ``LMBFF_TEST_GPU=1 python -m pytest tests/test_cuda.py`` (README, "Precision"); the rest of
the suite hides the GPU (tests/conftest.py)."""

from __future__ import annotations

import json
import os

# Deterministic cuBLAS needs this before the first cuBLAS call (the module is imported at collection).
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

import numpy as np
import pytest
import torch

from lmbff.data import Example
from lmbff.model import PromptModel
from lmbff.precision import bf16_native, precision_of, resolve_precision, to_rest
from lmbff.train import Trainer, TrainingArguments
from lmbff.tuning import make_config
from prompts.library import load_task

from .test_train import Interrupted

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA GPU, and LMBFF_TEST_GPU=1 (tests/conftest.py)"
)

SST2 = load_task("SST-2")
TREC = load_task("TREC")
TOLERANCE = 0.02  # as tests/test_precision.py: bf16 against fp32 class log-scores on tiny models


def toy(n=6):
    good = [Example({"text_a": f"good good good {i}"}, "1") for i in range(n)]
    bad = [Example({"text_a": f"bad bad bad {i}"}, "0") for i in range(n)]
    return good + bad


def on(model, device, dtype=torch.float32):
    copy = type(model)(model.config)
    copy.load_state_dict(model.state_dict())
    to_rest(copy, dtype)
    return copy.to(device).eval()


def test_auto_picks_bf16_where_the_gpu_has_it_natively():
    native = torch.cuda.is_bf16_supported(including_emulation=False)
    assert bf16_native("cuda") == native
    assert resolve_precision("auto", "cuda", backend="lora") == ("bf16" if native else "fp32")


@pytest.mark.parametrize("task", [SST2, TREC], ids=["next-token", "filled-sequence"])
def test_gpu_scores_match_the_cpu_in_fp32_and_stay_close_in_bf16(gpt, task):
    model, tokenizer = gpt
    texts = ["what a good film", "a bad , bad mess", "who was the first man on the moon ?"]
    examples = [Example({f: t for f in task.task.fields}) for t in texts]
    scores = {}
    for device, dtype in (("cpu", torch.float32), ("cuda", torch.float32), ("cuda", torch.bfloat16)):
        lm = on(model, device, dtype)
        pm = PromptModel.for_task(lm, tokenizer, task.task, task.prompt(), kind="causal")
        assert pm.device.type == device and precision_of(pm.lm) == (
            "bf16" if dtype == torch.bfloat16 else "fp32"
        )
        scores[device, dtype] = pm.predict_log_scores(examples)
        assert scores[device, dtype].dtype == np.float32
    cpu, gpu, gpu_bf16 = scores.values()
    assert np.abs(cpu - gpu).max() < 1e-4
    assert 0 < np.abs(gpu - gpu_bf16).max() < TOLERANCE


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize(("backend", "rate"), [("full", 5e-3), ("lora", 1e-2)])
def test_an_interrupted_gpu_run_resumes_bit_identically(gpt, backend, rate, dtype, tmp_path):
    """Dropout on the GPU draws from the GPU's generator: a checkpoint without its state resumes with
    other dropout masks and ends on other weights."""
    model, tokenizer = gpt
    data = toy(6)
    args = TrainingArguments(max_steps=8, batch_size=4, eval_every=3, learning_rate=rate)
    torch.use_deterministic_algorithms(True)
    try:

        def fresh():
            lm = on(model, "cuda", dtype)
            return PromptModel.for_task(lm, tokenizer, SST2.task, SST2.prompt(), kind="causal")

        whole = fresh()
        expected = Trainer(whole, SST2.task, make_config(backend), args, data, dev=data).train(progress=False)
        first = Interrupted(fresh(), SST2.task, make_config(backend), args, data, dev=data)
        first.stop_after = 7  # interrupted during step 8, after the checkpoint of step 6
        with pytest.raises(KeyboardInterrupt):
            first.train(progress=False, checkpoint_dir=tmp_path / "checkpoint")
        assert json.loads((tmp_path / "checkpoint" / "state.json").read_text())["step"] == 6
        resumed_model = fresh()
        resumed = Trainer(resumed_model, SST2.task, make_config(backend), args, data, dev=data)
        result = resumed.train(progress=False, checkpoint_dir=tmp_path / "checkpoint", resume=True)
    finally:
        torch.use_deterministic_algorithms(False)
    assert result.resumed_at_step == 6
    assert result.history == expected.history and result.best_step == expected.best_step
    for (name, a), (_, b) in zip(
        whole.lm.named_parameters(), resumed_model.lm.named_parameters(), strict=True
    ):
        assert a.device.type == "cuda" and a.dtype == dtype, name
        assert torch.equal(a, b), name


def test_the_command_line_trains_on_the_gpu_in_auto_and_predicts_its_own_scores(
    gpt_dir, tmp_path, monkeypatch
):
    """``--precision auto`` on a GPU with native bf16 trains LoRA in bf16 there, records it, and the
    saved state predicts the run's own test scores, bit for bit."""
    from lmbff.cli import main

    from .test_precision import prediction_scores, train_spam_lora

    metrics = train_spam_lora(tmp_path, gpt_dir, "auto", monkeypatch)
    native = torch.cuda.is_bf16_supported(including_emulation=False)
    assert metrics["precision"] == ("bf16" if native else "fp32")
    assert metrics["machine"]["gpu"]  # the run says which GPU it ran on

    assert main(["predict", "--state", "run/state", "--out", "again"]) == 0
    assert prediction_scores(tmp_path / "again" / "run") == prediction_scores(tmp_path / "run")
