"""How much memory a training step will take, measured before training starts, and how to split a
step's batch so that it fits.

A training step keeps, for the backward pass, what the forward pass of its batch saved; with many
multi-token label words that grows with the words (issue 36: 77 phrase-like words at batch 8 went
past 24 GB). Why by hand: no library predicts a model's saved activations for a given input; so
this *measures* them on one example (the bytes autograd saves, counted with
``torch.autograd.graph.saved_tensors_hooks``, in a forward pass without dropout and without touching
any random state), scales them by the batch, adds one chunk of vocabulary-wide logits (recomputed in
the backward pass) and the trained parameters' gradients, and compares the total with the memory
the machine has available.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# Share of the available memory a step may plan to use: the rest is headroom for the allocator,
# temporaries of the forward pass that are not kept, and whatever else the machine runs.
USABLE_SHARE = 0.7


@dataclass(frozen=True)
class StepMemory:
    """A training step's memory in MB: what one example keeps for backward, the vocabulary-wide rows it
    scores (their logits are recomputed in backward, a chunk of rows at a time), and the gradients."""

    per_example_mb: float
    rows_per_example: int
    # kept once per step whatever the batch (rotary tables, masks): measured as what one example keeps
    # beyond what each further one adds
    fixed_mb: float
    chunk_rows: int
    vocabulary: int
    gradients_mb: float
    available_mb: float

    def step_mb(self, batch_size: int) -> float:
        rows = min(batch_size * self.rows_per_example, self.chunk_rows)
        logits = rows * self.vocabulary * 4 * 3 / 2**20  # float32 logits, their softmax, its gradient
        return self.gradients_mb + self.fixed_mb + batch_size * self.per_example_mb + logits

    def micro_batch(self, batch_size: int) -> int:
        """The largest number of examples per forward pass (at most ``batch_size``) that fits."""
        fitting = [m for m in range(1, batch_size + 1) if self.step_mb(m) <= USABLE_SHARE * self.available_mb]
        return max(fitting, default=1)


def available_mb() -> float:
    """Memory available to this process now (MB): the accelerator's free memory on a GPU, else the
    system's available memory (psutil)."""
    if torch.cuda.is_available():
        free, _ = torch.cuda.mem_get_info()
        return free / 2**20
    import psutil

    return psutil.virtual_memory().available / 2**20


def kept_for_backward(lm: torch.nn.Module, compute):
    """(bytes autograd keeps for the backward pass while ``compute()`` runs, the shapes of those
    tensors, ``compute()``'s result): activations only, a weight or a view of one costs nothing."""
    weights = {p.untyped_storage().data_ptr() for p in lm.parameters()}
    seen: set[int] = set()
    kept, shapes = [0], []

    def count(tensor):
        storage = tensor.untyped_storage()
        # Once per storage: one activation saved by several operations (a layer's input, kept by its
        # query, key and value projections) is held once.
        if storage.data_ptr() not in weights and storage.data_ptr() not in seen:
            seen.add(storage.data_ptr())
            kept[0] += storage.nbytes()
            shapes.append(tuple(tensor.shape))
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(count, lambda t: t):
        out = compute()
    return kept[0], shapes, out


def measure_step_memory(prompt_model, encodings, params) -> StepMemory:
    """Measure what one example keeps for backward (the first of ``encodings``, alone and twice over:
    the difference is what each example adds, the rest is kept once a step), with the scoring path
    training uses, and the fixed part of a step: the gradients of ``params`` and one chunk of
    vocabulary-wide logits and their log-softmax (float32)."""
    from .model import logits_chunk_rows

    lm = prompt_model.base_lm
    rows = [0]
    target_log_probs = prompt_model._target_log_probs

    def counted_rows(features, *args, **kwargs):  # the positions whose vocabulary-wide softmax is taken
        rows[0] += features.shape[0]
        return target_log_probs(features, *args, **kwargs)

    was_training = lm.training
    lm.eval()  # no dropout: the probe draws no random numbers and leaves every random state as it was
    prompt_model._target_log_probs = counted_rows
    try:
        with torch.random.fork_rng(devices=[]):
            one, _, _ = kept_for_backward(lm, lambda: prompt_model.training_log_scores(encodings[:1]))
            rows_one = rows[0]
            two, _, _ = kept_for_backward(lm, lambda: prompt_model.training_log_scores(encodings[:1] * 2))
            rows[0] = rows_one
    finally:
        del prompt_model._target_log_probs  # the method again
        lm.train(was_training)
    vocabulary = lm.get_output_embeddings().weight.shape[0]
    gradients = sum(p.numel() * 4 for p in params) / 2**20  # float32 while training (lmbff.precision)
    each = max(two - one, 0)
    return StepMemory(
        each / 2**20,
        rows[0],
        max(one - each, 0) / 2**20,
        logits_chunk_rows(vocabulary),
        vocabulary,
        gradients,
        available_mb(),
    )
