"""LN-tuning: normalisation layers are recognised by type, so LayerNorm and RMSNorm variants of any
model qualify with no table to keep."""

from __future__ import annotations

from torch import nn

from ...errors import ModelError
from ..common import ParamGroups, freeze, group


def is_norm_layer(module: nn.Module) -> bool:
    name = type(module).__name__
    return isinstance(module, (nn.LayerNorm, nn.GroupNorm, nn.RMSNorm)) or name.endswith(
        ("LayerNorm", "RMSNorm")
    )


def norm_parameters(model: nn.Module) -> list[nn.Parameter]:
    params: dict[int, nn.Parameter] = {}
    for module in model.modules():
        if is_norm_layer(module):
            for p in module.parameters(recurse=False):
                params[id(p)] = p
    return list(params.values())


def apply(config, model: nn.Module) -> ParamGroups:
    freeze(model)
    params = norm_parameters(model)
    if not params:
        raise ModelError(f"{type(model).__name__} has no normalisation layers for LN-tuning")
    return group(params, config.learning_rate)
