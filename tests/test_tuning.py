"""Tuning backends on tiny masked and causal LMs: what trains, what stays, saved states, gates."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from lmbff.data import Example
from lmbff.errors import ConfigError
from lmbff.model import PromptModel
from lmbff.state import StateError, TrainedState, save_state
from lmbff.train import Trainer, TrainingArguments
from lmbff.tuning import PrefixConfig, SoftPromptConfig, backend_names, make_config
from lmbff.tuning.base import config_from_dict
from lmbff.tuning.injection import container, detach
from lmbff.tuning.ln.model import norm_parameters
from prompts.library import load_task

TASK_FILE = load_task("SST-2")
BACKENDS = [
    "ln",
    "bitfit",
    "soft-prompt",
    "prefix",
    "lora",
    "adapter",
    "prefix+ln",
    "adapter+prefix+ln",
    "unipelt",
]

# What each single method may train, by parameter name (norm parameters are checked by identity).
ADDED = {
    "soft-prompt": r"^lmbff_tuning\.prompt\.",
    "prefix": r"^lmbff_tuning\.prefix\.",
    "lora": r"\.lora_[AB]\.lmbff\.",
    "adapter": r"^lmbff_tuning\.adapter\.",
}


def toy(n: int = 8) -> list[Example]:
    good = [Example({"text_a": f"good good good {i}"}, "1") for i in range(n)]
    bad = [Example({"text_a": f"bad bad bad {i}"}, "0") for i in range(n)]
    return good + bad


def scorer(model, tokenizer, kind) -> PromptModel:
    return PromptModel.for_task(model, tokenizer, TASK_FILE.task, TASK_FILE.prompt(), kind=kind)


def train(pm: PromptModel, backend: str, steps: int = 3, **options) -> Trainer:
    args = TrainingArguments(max_steps=steps, batch_size=4, eval_every=0, learning_rate=1e-2)
    trainer = Trainer(pm, TASK_FILE.task, make_config(backend, options or None), args, toy())
    trainer.train(progress=False)
    return trainer


def intended(model, backend: str, name: str, param) -> bool:
    parts = backend.split("+")
    if "unipelt" in parts:
        return bool(re.search(r"^lmbff_tuning\.|\.lora_[AB]\.lmbff\.", name))
    norms = {id(p) for p in norm_parameters(model)}
    return any(
        (part == "ln" and id(param) in norms)
        or (part == "bitfit" and name.endswith(".bias"))
        or (part in ADDED and re.search(ADDED[part], name))
        for part in parts
    )


@pytest.fixture(params=["bert", "gpt"])
def fam(request, fresh_model):
    return request.param


@pytest.mark.parametrize("backend", BACKENDS)
def test_only_the_intended_parameters_train(backend, fam, fresh_model):
    model, tokenizer, kind = fresh_model(fam)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    pm = scorer(model, tokenizer, kind)
    grads: dict[str, bool] = {}
    trainer = Trainer(
        pm,
        TASK_FILE.task,
        make_config(backend),
        TrainingArguments(max_steps=3, batch_size=4, eval_every=0, learning_rate=1e-2),
        toy(),
    )
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    for name, p in model.named_parameters():
        if p.requires_grad:
            p.register_hook(
                lambda g, name=name: grads.__setitem__(name, grads.get(name, False) or bool(g.any()))
            )
    trainer.train(progress=False)
    assert trainable and all(
        intended(model, backend, n, p) for n, p in model.named_parameters() if n in trainable
    )
    # every intended parameter trained: got a non-zero gradient at some step
    assert {n for n, nonzero in grads.items() if nonzero} == trainable
    # everything of the base model that is not intended is bit-for-bit unchanged
    after = dict(model.named_parameters())
    for name, value in before.items():
        current = after.get(name)
        if current is None:  # peft moved the projection under .base_layer
            current = after[re.sub(r"\.(weight|bias)$", r".base_layer.\1", name)]
        if intended(model, backend, name, after.get(name, current)):
            continue
        assert torch.equal(current, value), name


# The contract every registered backend meets, whoever registered it (a new backend joins by registering),
# and two combinations: attach, train, save, reload bit for bit, detach back to the untouched base.
CONTRACT = sorted({*backend_names(), "prefix+ln", "adapter+prefix+ln"})


@pytest.mark.parametrize("backend", CONTRACT)
def test_saved_state_reloads_to_identical_scores_and_detaches_cleanly(backend, fam, fresh_model, tmp_path):
    model, tokenizer, kind = fresh_model(fam)
    base, _, _ = fresh_model(fam)  # same seed: the same frozen base
    pm = scorer(model, tokenizer, kind)
    trainer = train(pm, backend)
    data = toy(3)
    expected = pm.predict_log_scores(data)
    save_state(tmp_path, trainer.trainable_state(), trainer.saved_tuning, {"backend": backend})

    other = scorer(base, tokenizer, kind)
    untuned = other.predict_log_scores(data)
    state = TrainedState.load(tmp_path)
    attached = state.attach(other)
    assert np.array_equal(other.predict_log_scores(data), expected)
    attached.detach()
    assert np.array_equal(other.predict_log_scores(data), untuned)  # the base serves the next task
    assert not hasattr(base, "lmbff_tuning")
    fresh = fresh_model(fam)[0].state_dict()
    assert base.state_dict().keys() == fresh.keys()
    assert all(torch.equal(value, fresh[name]) for name, value in base.state_dict().items())


def test_two_task_states_share_one_base_model(fresh_model, tmp_path):
    """States of different backends attach to one loaded base in turn, each giving its own scores."""
    model, tokenizer, kind = fresh_model("bert")
    results = {}
    for backend in ("prefix+ln", "lora"):
        pm = scorer(*fresh_model("bert"))
        trainer = train(pm, backend)
        results[backend] = pm.predict_log_scores(toy(3))
        save_state(tmp_path / backend, trainer.trainable_state(), trainer.saved_tuning, {})
    shared = scorer(model, tokenizer, kind)
    for backend in ("prefix+ln", "lora", "prefix+ln"):
        attached = TrainedState.load(tmp_path / backend).attach(shared)
        assert np.array_equal(shared.predict_log_scores(toy(3)), results[backend])
        attached.detach()


def test_state_sizes_are_what_each_method_predicts(fresh_model):
    config = fresh_model("gpt")[0].config
    hidden, layers, heads = config.n_embd, config.n_layer, config.n_head
    sizes = {}
    for backend in ("soft-prompt", "prefix", "lora", "adapter", "ln"):
        pm = scorer(*fresh_model("gpt"))
        trainer = train(pm, backend, steps=1)
        sizes[backend] = sum(t.numel() for t in trainer.trainable_state().values())
    assert sizes["soft-prompt"] == 20 * hidden
    # folded: keys and values, per layer, per key/value head, 10 vectors of head_dim
    assert sizes["prefix"] == layers * 2 * heads * 10 * (hidden // heads)
    # GPT-2's fused c_attn (hidden -> 3 hidden): A is r x hidden, B is 3 hidden x r
    assert sizes["lora"] == layers * 8 * (hidden + 3 * hidden)
    assert sizes["adapter"] == layers * (hidden * 48 + 48 + 48 * hidden + hidden)
    assert sizes["ln"] == (2 * layers + 1) * 2 * hidden


def test_prefix_reparameterisation_folds_to_the_same_scores(fresh_model):
    model, tokenizer, kind = fresh_model("bert")
    pm = scorer(model, tokenizer, kind)
    Trainer(pm, TASK_FILE.task, PrefixConfig(), TrainingArguments(max_steps=2), toy())
    prefixes = container(model)["prefix"]
    assert prefixes.reparameterized
    before = pm.predict_log_scores(toy(3))
    exported = PrefixConfig().export(model)
    assert not prefixes.reparameterized and exported.mlp_hidden == 0
    assert list(dict(prefixes.named_parameters())) == ["values"]
    np.testing.assert_allclose(pm.predict_log_scores(toy(3)), before, atol=1e-6)


@pytest.mark.parametrize("backend", ["prefix", "unipelt"])
def test_prefix_attention_keeps_padding_and_causality(backend, fresh_model):
    for fam in ("bert", "gpt"):
        model, tokenizer, kind = fresh_model(fam)
        pm = scorer(model, tokenizer, kind)
        train(pm, backend, steps=2)
        short, long = toy(1)[0], Example({"text_a": "good " * 30}, "1")
        alone = pm.predict_log_scores([short])
        padded = pm.predict_log_scores([short, long], batch_size=2)[:1]
        np.testing.assert_allclose(alone, padded, atol=1e-5)  # padding neither seen nor averaged in gates
    if backend == "unipelt":
        return  # its gates average over the whole row by design (see lmbff/tuning/unipelt.py)
    # causal: hidden states at a position do not depend on later tokens, prefix or not
    ids = torch.tensor([[5, 6, 7, 8, 9]])
    changed = ids.clone()
    changed[0, -1] = 10
    with torch.no_grad():
        a = model(input_ids=ids, output_hidden_states=True).hidden_states[-1]
        b = model(input_ids=changed, output_hidden_states=True).hidden_states[-1]
    assert torch.allclose(a[0, :-1], b[0, :-1], atol=1e-6) and not torch.allclose(a[0, -1], b[0, -1])


def test_prefix_changes_attention_and_detach_restores_it(fresh_model):
    model = fresh_model("gpt")[0]
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        plain = model(input_ids=ids).logits
        PrefixConfig(mlp_hidden=0).apply(model)
        with_prefix = model(input_ids=ids).logits
        detach(model)
        again = model(input_ids=ids).logits
    assert not torch.allclose(plain, with_prefix)
    assert torch.equal(plain, again) and model.config._attn_implementation != "lmbff_prefix"


def test_prompt_tuning_reserves_positions_after_the_leading_tokens(fresh_model):
    model, tokenizer, kind = fresh_model("bert")
    pm = scorer(model, tokenizer, kind)
    plain = pm.encode(toy(1))[0]
    config = SoftPromptConfig(length=4)
    config.apply(model)
    config.prepare(pm)
    reserved = pm.encode(toy(1))[0]
    lead = len(pm.adapter.leading_ids)
    assert reserved.prefix_ids[:lead] == plain.prefix_ids[:lead]
    assert reserved.prefix_ids[lead : lead + 4] == [pm.adapter.pad_token_id] * 4
    assert reserved.prefix_ids[lead + 4 :] == plain.prefix_ids[lead:]
    with pytest.raises(ValueError, match="reserved positions"):
        model(input_ids=torch.tensor([plain.prefix_ids]))


def test_unipelt_gates_are_in_0_1_and_receive_gradients(fresh_model):
    model, tokenizer, kind = fresh_model("bert")
    pm = scorer(model, tokenizer, kind)
    # a few steps first: the adapter's and LoRA's zero-initialised output layers make their gates'
    # gradients exactly zero at the start (gate * 0)
    trainer = train(pm, "unipelt", steps=3)
    box = container(model)
    gate_layers = [box["adapter"][0].gate, box["prefix"].gates[0], box["lora_gates"][0]]
    seen = []
    handles = [
        g.register_forward_hook(lambda m, a, out: seen.append(torch.sigmoid(out).detach()))
        for g in gate_layers
    ]
    for g in gate_layers:
        g.weight.grad = None
    model.train()
    trainer.loss(toy(2), pm.encode(toy(2))).backward()
    for h in handles:
        h.remove()
    values = torch.cat([s.flatten() for s in seen])
    assert len(seen) == 3 and bool(((values > 0) & (values < 1)).all())
    assert all(g.weight.grad is not None and bool(g.weight.grad.any()) for g in gate_layers)


def test_backend_names_options_and_errors():
    config = make_config("adapter+prefix+ln", {"prefix": {"length": 4}})
    assert config.to_dict()["backend"] == "adapter+prefix+ln"
    assert config_from_dict(json.loads(json.dumps(config.to_dict()))).parts[1].length == 4
    with pytest.raises(ConfigError, match="unknown tuning backend 'prefx'"):
        make_config("prefx")
    with pytest.raises(ConfigError, match="no option width"):
        make_config("prefix", {"prefix": {"width": 3}})
    with pytest.raises(ConfigError, match="does not use"):
        make_config("ln", {"prefix": {"length": 3}})
    with pytest.raises(ConfigError, match="twice"):
        make_config("ln+ln")


def test_bitfit_refuses_a_model_without_biases(fresh_model):
    from transformers import LlamaConfig, LlamaForCausalLM

    model = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=100, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32
        )
    )
    with pytest.raises(ValueError, match="no bias terms"):
        make_config("bitfit").apply(model)


def test_state_of_another_model_is_refused(fresh_model, tmp_path):
    model, tokenizer, kind = fresh_model("bert")
    trainer = train(scorer(model, tokenizer, kind), "lora", steps=1)
    save_state(tmp_path, trainer.trainable_state(), trainer.saved_tuning, {"backend": "lora"})
    gpt, gtok, gkind = fresh_model("gpt")
    other = scorer(gpt, gtok, gkind)
    with pytest.raises(StateError, match="does not fit"):
        TrainedState.load(tmp_path).attach(other)
    assert not hasattr(gpt, "lmbff_tuning")
    with pytest.raises(StateError, match=r"no config\.json"):
        TrainedState.load(tmp_path / "missing")


def test_added_modules_start_from_the_runs_seed(fresh_model):
    def start(seed: int) -> dict:
        model, tokenizer, kind = fresh_model("bert")
        torch.manual_seed(1000 + seed)  # the global state must not matter
        args = TrainingArguments(max_steps=1, seed=seed)
        Trainer(scorer(model, tokenizer, kind), TASK_FILE.task, make_config("unipelt"), args, toy())
        return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}

    a, b, c = start(1), start(1), start(2)
    assert all(torch.equal(a[n], b[n]) for n in a)
    assert any(not torch.equal(a[n], c[n]) for n in a)


def test_lean_full_trains_everything_but_the_vocabulary_matrices(any_model):
    """``--full-embeddings frozen``: the (tied) embedding matrix stays as it is, every other weight
    trains; an unknown value is refused by name."""
    from lmbff.data import Example
    from lmbff.model import PromptModel
    from lmbff.train import Trainer, TrainingArguments
    from lmbff.tuning import make_config
    from prompts.library import load_task

    model, tokenizer, kind = any_model
    model = type(model)(model.config)
    model.load_state_dict(any_model[0].state_dict())
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    sst2 = load_task("SST-2")
    pm = PromptModel.for_task(model, tokenizer, sst2.task, sst2.prompt(), kind=kind)
    data = [Example({"text_a": f"good {i}"}, "1") for i in range(4)] + [
        Example({"text_a": f"bad {i}"}, "0") for i in range(4)
    ]
    config = make_config("full", {"full": {"embeddings": "frozen"}})
    trainer = Trainer(pm, sst2.task, config, TrainingArguments(max_steps=2, batch_size=4, eval_every=0), data)
    vocabulary = {id(model.get_input_embeddings().weight), id(model.get_output_embeddings().weight)}
    vocabulary_size = sum(p.numel() for p in model.parameters() if id(p) in vocabulary)
    assert trainer.trainable == trainer.total - vocabulary_size
    trainer.train(progress=False)
    frozen = {n for n, p in model.named_parameters() if id(p) in vocabulary}
    for name, p in model.named_parameters():
        if name in frozen:
            assert torch.equal(p, before[name]), name
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and not changed & frozen
    with pytest.raises(ValueError, match="full option embeddings must be one of train, frozen, got 'sparse'"):
        make_config("full", {"full": {"embeddings": "sparse"}})
