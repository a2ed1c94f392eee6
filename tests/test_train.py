"""The tuning loop and the LN backend used by the demo."""

import torch

from lmbff.data import Example
from lmbff.model import PromptModel
from lmbff.train import Trainer, TrainingArguments
from lmbff.tuning import FullConfig, LNConfig
from lmbff.tuning.ln import norm_parameters
from prompts.library import load_task

TASK_FILE = load_task("SST-2")


def toy(n=8):
    good = [Example({"text_a": f"good good good {i}"}, "1") for i in range(n)]
    bad = [Example({"text_a": f"bad bad bad {i}"}, "0") for i in range(n)]
    return good + bad


def prompt_model(model, tokenizer, kind):
    return PromptModel.for_task(model, tokenizer, TASK_FILE.task, TASK_FILE.prompt(), kind=kind)


def test_ln_tuning_changes_only_norm_parameters(any_model):
    model, tokenizer, kind = any_model
    model = type(model)(model.config)
    model.load_state_dict(any_model[0].state_dict())
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    norm_ids = {id(p) for p in norm_parameters(model)}
    pm = prompt_model(model, tokenizer, kind)
    trainer = Trainer(
        pm, TASK_FILE.task, LNConfig(), TrainingArguments(max_steps=3, batch_size=4, eval_every=0), toy()
    )
    assert trainer.trainable == sum(p.numel() for p in norm_parameters(model))
    trainer.train(progress=False)
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    norm_names = {n for n, p in model.named_parameters() if id(p) in norm_ids}
    assert changed and changed <= norm_names


def test_full_tuning_learns_a_separable_toy_task(bert):
    model, tokenizer = bert
    model = type(model)(model.config)
    model.load_state_dict(bert[0].state_dict())
    pm = prompt_model(model, tokenizer, "masked")
    data = toy()
    args = TrainingArguments(max_steps=30, batch_size=8, learning_rate=1e-2, eval_every=10)
    result = Trainer(pm, TASK_FILE.task, FullConfig(), args, data, dev=data).train(progress=False)
    losses = [h["loss"] for h in result.history]
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5
    assert result.best_dev == 1.0
    scores = pm.predict_log_scores(data)
    assert (scores.argmax(1) == [1] * 8 + [0] * 8).all()
