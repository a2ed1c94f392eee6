"""Full prompt-based fine-tuning: every parameter of the language model trains."""

from __future__ import annotations

from torch import nn

from ..common import ParamGroups, group


def apply(config, model: nn.Module) -> ParamGroups:
    return group(list(model.parameters()), config.learning_rate)
