"""Peak memory of a stretch of work."""

import sys

import pytest

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

    saved = []
    weights = {p.untyped_storage().data_ptr() for p in lm.parameters()}

    def keep(tensor):  # activations only: a view of a weight (its transpose, say) costs nothing
        if tensor.untyped_storage().data_ptr() not in weights:
            saved.append(tuple(tensor.shape))
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(keep, lambda t: t):
        scores = pm.class_log_scores(batch, calibrate=False)
    vocabulary_wide = [shape for shape in saved if len(shape) == 2 and shape[1] == vocabulary]
    assert saved and not vocabulary_wide, vocabulary_wide
    scores.sum().backward()
    grads = {n: p.grad.clone() for n, p in lm.named_parameters() if p.grad is not None}
    lm.zero_grad()
    # The same computation without recomputation: equal scores and gradients.

    def direct(features_, targets):
        logits = pm._output_logits(features_).float()
        return logits.log_softmax(-1).gather(1, targets[:, None]).squeeze(1)

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
