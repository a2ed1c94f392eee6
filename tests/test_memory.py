"""Peak memory of a stretch of work."""

import sys

import pytest

from lmbff.data import Example
from lmbff.memory import PeakMemory


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the high-water-mark reset is Linux's")
def test_peak_memory_sees_a_touched_allocation_and_resets():
    memory = PeakMemory()
    block = bytearray(150 * 2**20)
    block[::4096] = b"x" * len(block[::4096])  # touch every page so it is resident
    assert memory.above_start_mb() >= 140
    del block
    again = PeakMemory()  # a new measurement starts from the current level, not the old peak
    assert again.above_start_mb() < 140


def test_training_keeps_no_vocabulary_wide_logits_for_backward(gpt_tokenizer):
    """Issue 36: with gradients, every label-word token's full-vocabulary logits and log-softmax were
    held until backward (on Gemma, 2 x 262,144 floats a token; 1,850 tokens for 77 phrase-like words
    at batch 8). They are now recomputed in backward, one chunk at a time: what autograd keeps per
    scored token is its hidden state, not the vocabulary. Same scores and gradients."""
    import torch

    from lmbff.inputs import to_examples
    from lmbff.model import PromptModel
    from prompts.library import task_file_from_labels

    from .conftest import tiny_gpt

    words = ["not good at all", "rather good", "really great"]
    task_file = task_file_from_labels(["a", "b", "c"], "{{ text }} It was {{ mask }}", words)
    lm = tiny_gpt(gpt_tokenizer)
    pm = PromptModel.for_task(lm, gpt_tokenizer, task_file.task, task_file.prompt(), kind="causal")
    assert not pm.fast_path and pm.words.max_word_length > 1
    examples = to_examples(["a fine film", "a dull film", "it was fine"] * 4, ("text",))
    batch = pm.collate(pm.encode(examples))
    vocabulary = lm.get_output_embeddings().weight.shape[0]

    from lmbff.memory_plan import kept_for_backward

    _, saved, scores = kept_for_backward(lm, lambda: pm.class_log_scores(batch, calibrate=False))
    vocabulary_wide = [shape for shape in saved if len(shape) == 2 and shape[1] == vocabulary]
    assert saved and not vocabulary_wide, vocabulary_wide
    scores.sum().backward()
    grads = {n: p.grad.clone() for n, p in lm.named_parameters() if p.grad is not None}
    lm.zero_grad()
    # The same computation without recomputation: equal scores and gradients.

    def direct(features_, targets, index=None):
        index = torch.arange(len(targets)) if index is None else index
        return pm._output_logits(features_).float().log_softmax(-1)[index, targets]

    original = pm._target_log_probs
    pm._target_log_probs = direct
    try:
        again = pm.class_log_scores(batch, calibrate=False)
    finally:
        pm._target_log_probs = original
    assert torch.allclose(again, scores, atol=1e-6)
    again.sum().backward()
    for name, parameter in lm.named_parameters():
        if name in grads:
            assert torch.allclose(parameter.grad, grads[name], atol=1e-6), name


def _saved_bytes(lm, compute):
    """Bytes autograd keeps for backward while ``compute()`` runs, and its result."""
    from lmbff.memory_plan import kept_for_backward

    kept, _, out = kept_for_backward(lm, compute)
    return kept, out


def _many_words_model(n: int, kind: str, tokenizer, model):
    from lmbff.inputs import to_examples
    from lmbff.model import PromptModel
    from prompts.library import task_file_from_labels

    template = "{{ text }} It was {{ mask }}" + ("." if kind == "masked" else "")
    task_file = task_file_from_labels(
        [f"c{i}" for i in range(n)], template, [f"number {i} item" for i in range(n)]
    )
    pm = PromptModel.for_task(model, tokenizer, task_file.task, task_file.prompt(), kind=kind)
    text = "the film was a long and rather slow story about a family, and it was fine in the end"
    return pm, pm.encode(to_examples([text] * 8, ("text",)))


def test_masked_training_memory_barely_grows_with_the_label_words(bert_tokenizer):
    """Issue 36: every word of one length is read at the same masks, one vocabulary-wide softmax per
    mask (it was one per word and token), recomputed in backward. Measured: 1.00 MB kept for backward
    with 5 three-token words, 1.05 MB with 50."""
    from .conftest import tiny_bert

    kept = {}
    for n in (5, 50):
        lm = tiny_bert(bert_tokenizer)
        pm, encodings = _many_words_model(n, "masked", bert_tokenizer, lm)
        kept[n], _ = _saved_bytes(lm, lambda: pm.training_log_scores(encodings))  # noqa: B023
    assert kept[50] < 1.2 * kept[5], kept


@pytest.mark.parametrize("backend", ["full", "ln", "lora"])
def test_causal_training_on_the_shared_prefix_equals_the_row_path_and_keeps_far_less(backend, gpt_tokenizer):
    """Issue 36: a causal LM trains with the text before the slot run once per example, and each word's
    own tokens on its cached keys and values. Scores and gradients equal the row-per-word path within
    1e-5. Measured with 50 words: 118 MB kept for backward by the rows, 28 MB on the shared prefix."""
    import torch

    from lmbff.tuning import make_config

    from .conftest import tiny_gpt

    lm = tiny_gpt(gpt_tokenizer)
    make_config(backend).apply(lm)
    pm, encodings = _many_words_model(50, "causal", gpt_tokenizer, lm)
    assert pm.shares_prefix and pm.words.max_word_length > 1
    rows_kept, rows = _saved_bytes(lm, lambda: pm.class_log_scores(pm.collate(encodings), calibrate=False))
    shared_kept, shared = _saved_bytes(lm, lambda: pm.training_log_scores(encodings))
    assert torch.allclose(shared, rows, atol=1e-5), (shared - rows).abs().max()
    rows.sum().backward()
    by_rows = {n: p.grad.clone() for n, p in lm.named_parameters() if p.grad is not None}
    lm.zero_grad()
    shared.sum().backward()
    for name, parameter in lm.named_parameters():  # the same up to float32 summation order
        if name in by_rows:
            difference = (parameter.grad - by_rows[name]).norm() / by_rows[name].norm().clamp_min(1e-12)
            assert difference < 1e-5, (name, difference)
    assert shared_kept < rows_kept / 3, (shared_kept, rows_kept)


def test_a_step_that_would_not_fit_runs_in_smaller_passes_with_the_same_gradients(
    gpt_tokenizer, monkeypatch, capsys
):
    """Issue 36: the step's memory is measured on one example before training; when the batch would
    not fit the memory available, each step runs as several passes (never a process the kernel kills).
    The trained weights match an unsplit run's."""
    import torch

    from lmbff import memory_plan
    from lmbff.train import Trainer, TrainingArguments
    from lmbff.tuning import make_config

    from .conftest import tiny_gpt

    def trained(available_mb: float):
        monkeypatch.setattr(memory_plan, "available_mb", lambda: available_mb)
        lm = tiny_gpt(gpt_tokenizer)
        for module in lm.modules():  # no dropout: its masks depend on how the batch is split
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
        pm, _ = _many_words_model(20, "causal", gpt_tokenizer, lm)
        examples = [Example({"text": f"review number {i}"}, f"c{i % 20}") for i in range(8)]
        args = TrainingArguments(max_steps=2, batch_size=8, eval_every=0, learning_rate=1e-2)
        Trainer(pm, pm.task, make_config("ln"), args, examples).train(progress=True)
        return {n: p.detach().clone() for n, p in lm.named_parameters()}

    whole = trained(10**9)
    assert "passes of at most" not in capsys.readouterr().err
    split = trained(1.0)  # 1 MB available: one example per pass
    assert "each step runs as 8 passes of at most 1 examples" in capsys.readouterr().err
    for name, value in whole.items():
        assert torch.allclose(split[name], value, atol=1e-5), name
