"""BitFit: the trainable-flag selection (every parameter named ``*.bias``)."""

from __future__ import annotations

from torch import nn

from ...errors import ModelError
from ..common import ParamGroups, freeze, group


def apply(config, model: nn.Module) -> ParamGroups:
    freeze(model)
    params = [p for name, p in model.named_parameters() if name.endswith(".bias")]
    if not params:
        raise ModelError(
            f"{type(model).__name__} has no bias terms (e.g. Gemma and Llama use none): BitFit has "
            "nothing to train; choose another backend"
        )
    return group(params, config.learning_rate)
