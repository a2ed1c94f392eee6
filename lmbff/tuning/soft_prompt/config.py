"""Soft-prompt tuning (Lester et al. 2021; backend ``soft-prompt``, formerly ``prompt``): n trainable
soft tokens at the start of every input.

Written by hand because peft's prompt tuning wraps the model and prepends the soft tokens itself,
which shifts every position the cloze prompt reads (mask, label words) and cannot be combined with
other methods. Here the encoder reserves n placeholder positions right after the leading special
tokens, and a forward hook on the input embeddings puts the soft tokens there: positions, padding
and the attention mask stay the encoder's, and it composes with every other backend.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...options import option
from ..base import TuningConfig, register


@register
@dataclass
class SoftPromptConfig(TuningConfig):
    backend = "soft-prompt"
    implementation = "lmbff.tuning.soft_prompt.model"
    length: int = option(20, help="soft tokens (Lester et al.: 20 to 100)", low=1)
    # Soft tokens move far from their initial word embeddings; Lester et al. use 0.3 with Adafactor.
    learning_rate: float = 3e-2
