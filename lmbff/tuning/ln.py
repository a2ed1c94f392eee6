"""LN-tuning (Qi et al. 2022, arXiv 2211.08682): only the gain and bias of every normalisation layer train.

Written by hand because peft's LNTuningConfig needs the norm modules named per architecture (it has no
defaults for BERT/RoBERTa); recognising norm layers by type covers LayerNorm and the RMSNorm variants
(Gemma, Llama, T5) of any model with no table to keep.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from .base import ParamGroups, TuningConfig, freeze, group, register


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


@register
@dataclass
class LNConfig(TuningConfig):
    backend = "ln"
    # Norm gains and biases start at their pre-trained values and move little at LM-BFF's 1e-5.
    learning_rate: float = 1e-3

    def apply(self, model: nn.Module) -> ParamGroups:
        freeze(model)
        params = norm_parameters(model)
        if not params:
            raise ValueError(f"{type(model).__name__} has no normalisation layers for LN-tuning")
        return group(params, self.learning_rate)
