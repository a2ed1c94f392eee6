"""LN-tuning (Qi et al. 2022, arXiv 2211.08682): only the gain and bias of every normalisation layer train.

Written by hand because peft's LNTuningConfig needs the norm modules named per architecture (it has no
defaults for BERT/RoBERTa); recognising norm layers by type covers LayerNorm and the RMSNorm variants
(Gemma, Llama, T5) of any model with no table to keep.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..base import TuningConfig, register


@register
@dataclass
class LNConfig(TuningConfig):
    backend = "ln"
    implementation = "lmbff.tuning.ln.model"
    # Norm gains and biases start at their pre-trained values and move little at LM-BFF's 1e-5.
    learning_rate: float = 1e-3
