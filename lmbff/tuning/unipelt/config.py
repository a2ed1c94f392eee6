"""UniPELT (Mao et al. 2022): adapter, prefix and LoRA in every layer, each scaled by a learned gate.

A gate is ``sigmoid(Linear(x))`` computed per token and averaged over the (unpadded) sequence: one
scalar per example, layer and method. UniPELT was made for encoders: on a causal LM the gates
see the whole row, so earlier positions depend on later tokens through them. Scores in
``next_token`` mode are unaffected (the row ends at the slot); in ``sequence`` mode each
candidate's row gets its own gates. The adapter's gate reads the adapter's input, the prefix's the
layer input, LoRA's the projection input; LoRA's gate replaces its alpha / rank scaling.

Written by hand around the same pieces as the single backends (peft's LoRA, the prefix attention
function, the adapter hook) because peft has no gated combination and cannot mix prefix tuning
with LoRA.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...options import option
from ..base import TuningConfig, register


@register
@dataclass
class UniPELTConfig(TuningConfig):
    backend = "unipelt"
    implementation = "lmbff.tuning.unipelt.model"
    prefix_length: int = option(10, help="prefix vectors per layer (UniPELT: 10)", low=1)
    prefix_mlp_hidden: int = option(512, help="prefix reparameterisation width; 0: none", low=0)
    adapter_bottleneck: int = option(48, help="adapter width (UniPELT: 48)", low=1)
    lora_rank: int = option(8, help="LoRA rank (UniPELT: 8)", low=1)
    # One rate for all parts (gates included): between the adapter/LoRA (1e-4) and prefix (1e-3) defaults.
    learning_rate: float = 5e-4
