"""Full prompt-based fine-tuning (LM-BFF): every parameter trains."""

from __future__ import annotations

from dataclasses import dataclass

from ..base import TuningConfig, register


@register
@dataclass
class FullConfig(TuningConfig):
    backend = "full"
    implementation = "lmbff.tuning.full.model"
    learning_rate: float = 1e-5  # LM-BFF's default (Gao et al. 2021)
