"""Full prompt-based fine-tuning: every parameter of the language model trains (with
``embeddings="frozen"``, all but the input embeddings and the output layer)."""

from __future__ import annotations

from torch import nn

from ...errors import ModelError
from ..common import ParamGroups, freeze, group


def apply(config, model: nn.Module) -> ParamGroups:
    if getattr(config, "embeddings", "train") == "train":
        return group(list(model.parameters()), config.learning_rate)
    freeze(model)
    vocabulary = {id(layer.weight) for layer in _vocabulary_layers(model)}
    return group([p for p in model.parameters() if id(p) not in vocabulary], config.learning_rate)


def _vocabulary_layers(model: nn.Module) -> list[nn.Module]:
    """The input embeddings and the output layer (the same matrix when tied)."""
    layers = []
    for getter in ("get_input_embeddings", "get_output_embeddings"):
        layer = getattr(model, getter, lambda: None)()
        if layer is not None and getattr(layer, "weight", None) is not None:
            layers.append(layer)
    if not layers:
        raise ModelError(f"{type(model).__name__} has no input or output embeddings to keep frozen")
    return layers
