"""BitFit (Ben Zaken et al. 2022): only the bias terms train.

Written by hand: it is a trainable-flag selection (every parameter named ``*.bias``), with nothing
added to the model, so peft's machinery would only wrap a one-line filter.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..base import TuningConfig, register


@register
@dataclass
class BitFitConfig(TuningConfig):
    backend = "bitfit"
    implementation = "lmbff.tuning.bitfit.model"
    # Biases start at their pre-trained values (zeros in many layers); Ben Zaken et al. use 1e-4 to 1e-3.
    learning_rate: float = 1e-3
