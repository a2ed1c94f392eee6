"""The tuning loop and the LN backend used by the demo."""

import json

import pytest
import torch

from lmbff.data import Example
from lmbff.model import PromptModel
from lmbff.train import Trainer, TrainingArguments
from lmbff.tuning import FullConfig, LNConfig, make_config
from lmbff.tuning.ln.model import norm_parameters
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


class Interrupted(Trainer):
    """Stops like a Ctrl-C once it has computed ``stop_after`` losses."""

    stop_after = 10**9

    def loss(self, examples, encodings):
        self.calls = getattr(self, "calls", 0) + 1
        if self.calls > self.stop_after:
            raise KeyboardInterrupt
        return super().loss(examples, encodings)


def fresh(model_and_tokenizer, dtype=torch.float32):
    model, tokenizer = model_and_tokenizer
    copy = type(model)(model.config)
    copy.load_state_dict(model.state_dict())
    return prompt_model(copy.to(dtype), tokenizer, "masked")


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize(("backend", "rate"), [("full", 5e-3), ("prefix+ln", None)])
def test_resume_after_interruption_ends_like_an_uninterrupted_run(backend, rate, dtype, bert, tmp_path):
    """Also for a combination: two parameter groups at their own rates, a reparameterised prefix; and
    in bf16 (float32 master copies and moments in the checkpoint)."""
    data = toy(6)
    args = TrainingArguments(
        max_steps=8, batch_size=4, eval_every=3, learning_rate=rate, gradient_accumulation_steps=2
    )
    whole = fresh(bert, dtype)
    expected = Trainer(whole, TASK_FILE.task, make_config(backend), args, data, dev=data).train(
        progress=False
    )

    first = Interrupted(fresh(bert, dtype), TASK_FILE.task, make_config(backend), args, data, dev=data)
    first.stop_after = 2 * 7  # interrupted during step 8, after the checkpoint of step 6
    with pytest.raises(KeyboardInterrupt):
        first.train(progress=False, checkpoint_dir=tmp_path / "checkpoint")
    assert json.loads((tmp_path / "checkpoint" / "state.json").read_text())["step"] == 6

    resumed_model = fresh(bert, dtype)
    resumed = Trainer(resumed_model, TASK_FILE.task, make_config(backend), args, data, dev=data)
    result = resumed.train(progress=False, checkpoint_dir=tmp_path / "checkpoint", resume=True)
    assert result.history == expected.history and result.best_step == expected.best_step
    # its cost counts the training before the checkpoint, done by the interrupted process
    assert expected.resumed_at_step == 0 and expected.earlier_seconds == 0.0
    assert result.resumed_at_step == 6 and result.earlier_seconds > 0 and result.earlier_cpu_seconds > 0
    saved = json.loads((tmp_path / "checkpoint" / "state.json").read_text())  # the last: both processes
    assert saved["step"] == 8 and saved["seconds"] > result.earlier_seconds
    for (name, a), (_, b) in zip(
        whole.lm.named_parameters(), resumed_model.lm.named_parameters(), strict=True
    ):
        assert torch.equal(a, b), name
        assert a.dtype == dtype, name  # trained in float32, at rest in the model's precision again


def test_resume_refuses_a_checkpoint_of_other_arguments(bert, tmp_path):
    data = toy(4)
    args = TrainingArguments(max_steps=2, batch_size=4, eval_every=1)
    Trainer(fresh(bert), TASK_FILE.task, FullConfig(), args, data, dev=data).train(
        progress=False, checkpoint_dir=tmp_path / "ckpt"
    )
    other = TrainingArguments(max_steps=4, batch_size=4, eval_every=1)
    with pytest.raises(ValueError, match="other training arguments"):
        Trainer(fresh(bert), TASK_FILE.task, FullConfig(), other, data, dev=data).train(
            progress=False, checkpoint_dir=tmp_path / "ckpt", resume=True
        )


def test_a_budget_that_sees_fewer_examples_than_given_says_so(bert_tokenizer, capsys):
    """Issue 36: the fast preset's 32 steps of 8 saw 256 of 616 rows, without a word."""
    from .conftest import tiny_bert

    task_file = load_task("SST-2")
    pm = PromptModel.for_task(
        tiny_bert(bert_tokenizer), bert_tokenizer, task_file.task, task_file.prompt(), kind="masked"
    )
    examples = [Example({"text_a": f"film {i}"}, str(i % 2)) for i in range(20)]
    args = TrainingArguments(max_steps=2, batch_size=4, eval_every=0, learning_rate=1e-3)
    Trainer(pm, task_file.task, make_config("ln"), args, examples).train(progress=True)
    printed = capsys.readouterr().err  # the library shows its notes on stderr (lmbff.logs)
    assert "note: 2 steps of 4 see 8 examples, fewer than the 20 given (0.40 epochs)" in printed
    assert "max_steps 5 sees each once" in printed


def test_the_baselines_new_head_trains_at_its_own_rate(bert):
    """Issue 36: at the body's 1e-5 the new head of a 77-class task barely moved (0.036 accuracy)."""
    from lmbff.finetune import HEAD_LEARNING_RATE, FineTuneClassifier

    model, tokenizer = bert
    copy = type(model)(model.config)
    copy.load_state_dict(model.state_dict())
    scorer = FineTuneClassifier(copy, tokenizer, TASK_FILE.task, kind="masked")
    args = TrainingArguments(max_steps=1, batch_size=4, learning_rate=2e-5)
    trainer = Trainer(scorer, TASK_FILE.task, FullConfig(embeddings="train"), args, toy(4))
    head = {id(p) for p in scorer.head_parameters()}
    groups = {g.get("name"): g for g in trainer.param_groups}
    assert groups["head"]["lr"] == HEAD_LEARNING_RATE and {id(p) for p in groups["head"]["params"]} == head
    body = [g for g in trainer.param_groups if g.get("name") != "head"]
    assert body and not any(id(p) in head for g in body for p in g["params"])
    before = [p.detach().clone() for p in scorer.head_parameters()]
    trainer.train(progress=False)
    # one AdamW step moves each weight by about its rate: the head's, not the --learning-rate given
    moved = max((p - b).abs().max().item() for p, b in zip(scorer.head_parameters(), before, strict=True))
    assert moved == pytest.approx(HEAD_LEARNING_RATE, rel=0.05)
