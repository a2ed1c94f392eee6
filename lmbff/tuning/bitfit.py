"""BitFit (Ben Zaken et al. 2022): only the bias terms train.

Written by hand: it is a trainable-flag selection (every parameter named ``*.bias``), with nothing
added to the model, so peft's machinery would only wrap a one-line filter.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from .base import ParamGroups, TuningConfig, freeze, group, register


@register
@dataclass
class BitFitConfig(TuningConfig):
    backend = "bitfit"
    # Biases start at their pre-trained values (zeros in many layers); Ben Zaken et al. use 1e-4 to 1e-3.
    learning_rate: float = 1e-3

    def apply(self, model: nn.Module) -> ParamGroups:
        freeze(model)
        params = [p for name, p in model.named_parameters() if name.endswith(".bias")]
        if not params:
            raise ValueError(
                f"{type(model).__name__} has no bias terms (e.g. Gemma and Llama use none): BitFit has "
                "nothing to train; choose another backend"
            )
        return group(params, self.learning_rate)
