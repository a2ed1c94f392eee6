"""Full prompt-based fine-tuning (LM-BFF): every parameter trains."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from .base import ParamGroups, TuningConfig, group, register


@register
@dataclass
class FullConfig(TuningConfig):
    backend = "full"
    learning_rate: float = 1e-5  # LM-BFF's default (Gao et al. 2021)

    def apply(self, model: nn.Module) -> ParamGroups:
        return group(list(model.parameters()), self.learning_rate)
