"""Reading a language model's last hidden states at chosen positions without computing the output layer
for every position (shared by every scoring mode)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import nn

from ..precision import compute


@contextlib.contextmanager
def features_before_output_layer(lm: nn.Module) -> Iterator[dict]:
    """Capture the input of the output layer and hand it an empty slice, so no vocabulary-sized
    logits are computed for any position. Works for MLM heads (transform, then decoder) and causal LM
    heads alike, because both end in ``get_output_embeddings()``. The forward passes inside run in the
    model's precision (:func:`lmbff.precision.compute`: autocast while it mixes bf16 and float32)."""
    box: dict = {}

    def hook(module, args):
        box["features"] = args[0]
        return (args[0][..., :0, :], *args[1:])

    handle = lm.get_output_embeddings().register_forward_pre_hook(hook)
    try:
        with compute(lm):
            yield box
    finally:
        handle.remove()
