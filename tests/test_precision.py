"""Precision (fp32, bf16, auto): bf16 weights score close to fp32 ones, what trains is float32 while it
trains and bf16 again after, a bf16 state scores bit-identically wherever it is loaded, runs resume
bit-identically, and ``auto`` follows what the hardware reports."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lmbff.cli import main
from lmbff.data import Example
from lmbff.model import PromptModel
from lmbff.precision import compute, precision_of, resolve_precision, to_rest
from lmbff.pretrained import load_model
from lmbff.state import TrainedState
from lmbff.train import Trainer, TrainingArguments
from lmbff.tuning import make_config
from prompts.library import load_task

from .test_saved_states import SPAM, _spam_data

SST2 = load_task("SST-2")
TREC = load_task("TREC")
# Agreement of bf16 and fp32 log-scores on the tiny random models: bf16 keeps 8 bits of mantissa, so
# hidden states differ in the third significant digit; class log-scores stay within this.
TOLERANCE = 0.02


def toy(n=6):
    good = [Example({"text_a": f"good good good {i}"}, "1") for i in range(n)]
    bad = [Example({"text_a": f"bad bad bad {i}"}, "0") for i in range(n)]
    return good + bad


def copy_of(model, dtype=torch.float32):
    copy = type(model)(model.config)
    copy.load_state_dict(model.state_dict())
    to_rest(copy, dtype)
    return copy.eval()


def test_auto_follows_what_the_hardware_reports(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True)
    assert resolve_precision("auto") == "bf16"
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert resolve_precision("auto") == "fp32"
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    assert resolve_precision("auto") == "bf16"
    assert resolve_precision("fp32") == "fp32" and resolve_precision("bf16") == "bf16"
    with pytest.raises(ValueError, match="precision must be one of fp32, bf16, auto, got 'fp16'"):
        resolve_precision("fp16")


def test_auto_runs_are_filed_under_the_precision_they_ran_in(monkeypatch):
    """Seen: an auto run's folder said "auto", so bf16 runs of one machine and fp32 runs of another
    would have been averaged as one method."""
    from lmbff.experiment import experiment_folder

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    for native, name in ((True, "prompt-lora-bf16"), (False, "prompt-lora")):
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda native=native: native)
        assert experiment_folder("o", "prompt", 13, "lora", None, "auto").parent.name == name
        assert experiment_folder("o", "prompt", 13, "lora", None, "bf16").parent.name == "prompt-lora-bf16"


@pytest.mark.parametrize(
    ("family", "task", "template"),
    [
        ("bert", SST2, None),  # masked, one-position fast path
        ("roberta", SST2, None),
        ("gpt", SST2, None),  # causal, next token, fast path
        ("gpt", TREC, None),  # causal, slot first: the filled sequence, shared-prefix path
    ],
)
def test_bf16_scores_agree_with_fp32(family, task, template, request):
    model, tokenizer = request.getfixturevalue(family)
    kind = "causal" if family == "gpt" else "masked"
    texts = ["what a good film", "a bad , bad mess", "who was the first man on the moon ?"]
    examples = [Example({f: t for f in task.task.fields}) for t in texts]
    scores = {}
    for dtype in (torch.float32, torch.bfloat16):
        pm = PromptModel.for_task(
            copy_of(model, dtype), tokenizer, task.task, task.prompt(template), kind=kind
        )
        assert precision_of(pm.lm) == ("bf16" if dtype == torch.bfloat16 else "fp32")
        scores[dtype] = pm.predict_log_scores(examples)
        assert scores[dtype].dtype == np.float32
    if task is TREC:
        assert not PromptModel.for_task(model, tokenizer, task.task, task.prompt(), kind=kind).fast_path
    difference = np.abs(scores[torch.float32] - scores[torch.bfloat16]).max()
    assert 0 < difference < TOLERANCE  # different (bf16 did run) and close


def test_load_model_in_bf16_keeps_the_fingerprint(bert_dir):
    fp32 = load_model(str(bert_dir))
    bf16 = load_model(str(bert_dir), precision="bf16")
    assert (fp32.precision, bf16.precision) == ("fp32", "bf16")
    assert {p.dtype for p in bf16.model.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in fp32.model.parameters()} == {torch.float32}
    assert bf16.fingerprint == fp32.fingerprint  # the same base: a state may move between them
    with pytest.raises(ValueError, match="precision must be one of"):
        load_model(str(bert_dir), precision="half")


class Watched(Trainer):
    """Records the dtypes of the trained weights and of the frozen linear layers while it trains, and
    the dtypes its linear layers compute in (their outputs)."""

    def loss(self, examples, encodings):
        linear = [
            m.weight
            for m in self.model.base_lm.modules()
            if isinstance(m, (torch.nn.Linear, torch.nn.Embedding))
        ]
        self.seen = ({p.dtype for p in self.params}, {p.dtype for p in linear if not p.requires_grad})
        self.computed = set()
        hooks = [
            m.register_forward_hook(lambda module, args, out: self.computed.add(out.dtype))
            for m in self.model.base_lm.modules()
            if isinstance(m, torch.nn.Linear)
        ]
        try:
            return super().loss(examples, encodings)
        finally:
            for hook in hooks:
                hook.remove()


@pytest.mark.parametrize(
    "backend",
    [
        "ln",
        "full",
        "full-train",
        "lora",
        "prefix",
        "soft-prompt",
        "adapter",
        "bitfit",
        "unipelt",
        "prefix+ln",
    ],
)
@pytest.mark.parametrize("family", ["bert", "gpt"])
def test_every_backend_trains_in_bf16_and_its_state_scores_identically(backend, family, request, tmp_path):
    """Float32 master copies while training, bf16 at rest after; the state put on a fresh bf16 base
    scores exactly as the trained model did."""
    from safetensors.torch import save_file

    model, tokenizer = request.getfixturevalue(family)
    kind = "causal" if family == "gpt" else "masked"
    pm = PromptModel.for_task(copy_of(model, torch.bfloat16), tokenizer, SST2.task, SST2.prompt(), kind=kind)
    args = TrainingArguments(max_steps=2, batch_size=4, eval_every=0, learning_rate=1e-2)
    # full-train: LM-BFF's every weight; full: lean, the vocabulary matrices frozen (in bf16)
    every_weight = {"full": {"embeddings": "train"}}
    tuning = make_config("full", every_weight) if backend == "full-train" else make_config(backend)
    trainer = Watched(pm, SST2.task, tuning, args, toy(4))
    trainer.train(progress=False)
    trained_dtypes, frozen_dtypes = trainer.seen
    assert trained_dtypes == {torch.float32}
    assert frozen_dtypes == ({torch.bfloat16} if backend != "full-train" else set())
    # bf16 compute while training, also when every weight trains (full-train: nothing is left in bf16)
    assert trainer.computed == {torch.bfloat16}
    assert {p.dtype for p in pm.base_lm.parameters()} == {torch.bfloat16}
    data = toy(3)
    after_training = pm.predict_log_scores(data)

    tensors = {n: t.detach().clone() for n, t in trainer.trainable_state().items()}
    save_file({n: t.contiguous() for n, t in tensors.items()}, str(tmp_path / "trained.safetensors"))
    state = TrainedState(tmp_path, trainer.saved_tuning, {}, tensors)
    fresh = PromptModel.for_task(
        copy_of(model, torch.bfloat16), tokenizer, SST2.task, SST2.prompt(), kind=kind
    )
    attached = state.attach(fresh)
    assert {p.dtype for p in fresh.base_lm.parameters()} == {torch.bfloat16}
    assert np.array_equal(fresh.predict_log_scores(data), after_training)
    attached.detach()


def test_bf16_full_tuning_learns_the_toy_task(bert):
    model, tokenizer = bert
    pm = PromptModel.for_task(
        copy_of(model, torch.bfloat16), tokenizer, SST2.task, SST2.prompt(), kind="masked"
    )
    data = toy(8)
    args = TrainingArguments(max_steps=30, batch_size=8, learning_rate=1e-2, eval_every=10)
    result = Trainer(pm, SST2.task, make_config("full"), args, data, dev=data).train(progress=False)
    assert result.best_dev == 1.0
    assert (pm.predict_log_scores(data).argmax(1) == [1] * 8 + [0] * 8).all()


def test_compute_autocasts_only_a_mixed_model(gpt):
    model = copy_of(gpt[0], torch.bfloat16)
    with compute(model):
        assert not torch.is_autocast_enabled("cpu")
    model.transformer.ln_f.weight.data = model.transformer.ln_f.weight.data.float()
    with compute(model):
        assert torch.is_autocast_enabled("cpu")
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16


def test_a_checkpoint_refuses_to_resume_in_another_precision(bert, tmp_path):
    model, tokenizer = bert
    args = TrainingArguments(max_steps=2, batch_size=4, eval_every=1)

    def trainer(dtype):
        pm = PromptModel.for_task(copy_of(model, dtype), tokenizer, SST2.task, SST2.prompt(), kind="masked")
        return Trainer(pm, SST2.task, make_config("ln"), args, toy(4))

    trainer(torch.float32).train(progress=False, checkpoint_dir=tmp_path / "ckpt")
    state = json.loads((tmp_path / "ckpt" / "state.json").read_text())
    assert state["precision"] == "torch.float32"
    with pytest.raises(ValueError, match=r"weights in torch.float32, this run's are in torch.bfloat16"):
        trainer(torch.bfloat16).train(progress=False, checkpoint_dir=tmp_path / "ckpt", resume=True)


def train_spam_lora(work, model_dir, precision: str, monkeypatch) -> dict:
    """`lmbff train` of LoRA on the spam toy task in ``work`` (the current folder after it); its metrics."""
    _spam_data(work / "data")
    (work / "spam.yaml").write_text(SPAM)
    monkeypatch.chdir(work)
    command = (
        f"train --task spam.yaml --data-dir data --model {model_dir} --out run --precision {precision} "
        "--max-steps 3 --eval-every 0 --batch-size 4 --learning-rate 1e-2 --backend lora"
    )
    assert main(command.split()) == 0
    return json.loads((work / "run" / "metrics.json").read_text())


def prediction_scores(folder) -> list[list[float]]:
    lines = (folder / "predictions.jsonl").read_text().splitlines()
    return [list(json.loads(line)["scores"].values()) for line in lines]


def test_a_bf16_run_predicts_bit_identically_and_fp32_differs(bert_dir, tmp_path, monkeypatch):
    work = tmp_path / "work"
    metrics = train_spam_lora(work, bert_dir, "bf16", monkeypatch)
    assert metrics["precision"] == "bf16"
    assert "| precision | bf16 |" in (work / "run" / "results.md").read_text()
    config = json.loads((work / "run" / "state" / "config.json").read_text())
    assert config["scoring"]["precision"] == "bf16"

    scores = prediction_scores
    assert main(["predict", "--state", "run/state", "--out", "same"]) == 0
    assert scores(work / "same" / "run") == scores(work / "run")
    assert json.loads((work / "same" / "run" / "metrics.json").read_text())["precision"] == "bf16"
    assert main(["predict", "--state", "run/state", "--out", "fp32", "--precision", "fp32"]) == 0
    in_fp32 = np.array(scores(work / "fp32" / "run"))
    assert not np.array_equal(in_fp32, np.array(scores(work / "run")))
    assert np.abs(in_fp32 - np.array(scores(work / "run"))).max() < 0.05


def test_zero_shot_records_its_precision(bert_dir, tmp_path):
    data = tmp_path / "news.csv"
    data.write_text(
        "text,label\n" + "".join(f"match {i} won,Sports\nstocks {i} fell,World\n" for i in range(3))
    )
    out = tmp_path / "zs"
    command = [
        "zero-shot", "--labels", "World,Sports", "--template", "{{ text }} Topic: {{ mask }}.",
        "--data-file", str(data), "--model", str(bert_dir), "--precision", "bf16", "--out", str(out),
    ]  # fmt: skip
    assert main(command) == 0
    assert json.loads((out / "metrics.json").read_text())["precision"] == "bf16"


def test_the_estimator_in_bf16_saves_and_loads_bit_identically(bert_dir, tmp_path):
    from lmbff.classifier import PromptClassifier, shared_base

    texts = [f"good movie {i}" for i in range(4)] + [f"awful movie {i}" for i in range(4)]
    labels = [1] * 4 + [0] * 4
    clf = PromptClassifier(
        "SST-2", str(bert_dir), precision="bf16", backend="ln", max_steps=2, batch_size=4,
        eval_every=0, learning_rate=1e-2, verbose=False,
    )  # fmt: skip
    clf.fit(texts, labels)
    assert clf.base_.precision == "bf16"
    assert shared_base(str(bert_dir), precision="fp32") is not clf.base_  # an fp32 classifier never shares it
    probabilities = clf.predict_proba(texts)
    clf.save(tmp_path / "clf")
    loaded = PromptClassifier.load(tmp_path / "clf")
    assert loaded.base_ is clf.base_
    assert np.array_equal(loaded.predict_proba(texts), probabilities)
    with pytest.raises(ValueError, match="LoadedModel given as model is in bf16"):
        PromptClassifier("SST-2", clf.base_, precision="fp32", verbose=False).fit(texts, labels)


def test_shared_base_loaded_without_a_kind_serves_the_kind_it_was_detected_as(bert_dir):
    from lmbff.classifier import shared_base

    detected = shared_base(str(bert_dir))
    assert shared_base(str(bert_dir), "masked") is detected


def test_auto_keeps_full_fine_tuning_in_fp32_where_bf16_is_native(monkeypatch, bert_dir):
    """Full fine-tuning gained 1.14x a step in bf16 at more peak memory (README "Precision"): auto
    keeps it in fp32, in the run's folder, its plan, its loaded model and the estimator alike."""
    from lmbff.classifier import PromptClassifier
    from lmbff.cli import _experiment_config, build_parser
    from lmbff.defaults import plan_text
    from lmbff.experiment import experiment_folder

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True)
    assert resolve_precision("auto", backend="full") == "fp32"
    assert resolve_precision("auto", backend="lora") == "bf16" and resolve_precision("auto") == "bf16"
    assert resolve_precision("bf16", backend="full") == "bf16"  # asked for: given
    lean = experiment_folder("o", "prompt", 13, "full", None, "auto")
    assert lean.parent.name == "prompt-full-embeddings-frozen"
    assert experiment_folder("o", "zero-shot", 13, "full", None, "auto").parent.name == "zero-shot-bf16"
    base = ["run", "--task", "SST-2", "--data-dir", "d", "--out", "o"]
    for extra, resolved in ((["--backend", "full"], "fp32"), ([], "bf16")):
        args = build_parser().parse_args([*base, *extra])
        config = _experiment_config(args, "prompt", "d", "o", 13)
        assert config.resolved_precision == resolved
        assert f"in {resolved} (auto" in plan_text([config], "fast")
    # a plan whose runs resolve differently says which runs get which
    args = build_parser().parse_args([*base, "--backend", "full"])
    mixed = [_experiment_config(args, m, "d", "o", 13) for m in ("zero-shot", "prompt")]
    assert "in bf16 for zero-shot, fp32 for prompt (auto" in plan_text(mixed, "fast")
    texts, labels = ["good film", "bad film"] * 2, [1, 0] * 2
    for backend, dtype in (("full", torch.float32), ("ln", torch.bfloat16)):
        clf = PromptClassifier("SST-2", str(bert_dir), backend=backend, max_steps=1, batch_size=2,
                               eval_every=0, verbose=False).fit(texts, labels)  # fmt: skip
        assert clf.base_.precision == precision_of(clf.base_.model) and rest_of(clf) == dtype


def rest_of(clf):
    return next(p.dtype for p in clf.base_.model.parameters() if p.is_floating_point())
