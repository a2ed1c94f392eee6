"""Full prompt-based fine-tuning (LM-BFF): every parameter trains."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from .base import TuningConfig, register


@register
@dataclass
class FullConfig(TuningConfig):
    backend = "full"
    learning_rate: float = 1e-5  # LM-BFF's default (Gao et al. 2021)

    def apply(self, model: nn.Module) -> list[nn.Parameter]:
        for p in model.parameters():
            p.requires_grad_(True)
        return [p for p in model.parameters() if p.requires_grad]
