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

from dataclasses import dataclass, field

import torch
from torch import nn

from .adapter import attach_adapters
from .base import ParamGroups, TuningConfig, freeze, group, register
from .injection import add_hook, attention_modules, container, hidden_size, sequence_mean
from .lora import ADAPTER_NAME, inject_lora
from .prefix import Prefixes, attach_prefixes, prefix_shape


def _hidden_states(args, kwargs) -> torch.Tensor:
    return args[0] if args else kwargs["hidden_states"]


def gate_prefixes(model: nn.Module, prefixes: Prefixes, cache: dict) -> list[nn.Parameter]:
    """One gate per attention layer, computed from the layer input before attention runs."""
    modules = attention_modules(model)
    device = next(model.parameters()).device
    prefixes.gates = nn.ModuleList(nn.Linear(hidden_size(model), 1) for _ in modules).to(device)
    for module, gate in zip(modules, prefixes.gates, strict=True):

        def compute(module, args, kwargs, gate=gate):
            h = _hidden_states(args, kwargs)
            cache["gates"][module.layer_idx] = sequence_mean(model, torch.sigmoid(gate(h))).squeeze(-1)

        add_hook(model, module.register_forward_pre_hook(compute, with_kwargs=True))
    return list(prefixes.gates.parameters())


def gate_lora(model: nn.Module) -> list[nn.Parameter]:
    """A gate per LoRA layer: its update is multiplied by gate / scaling, so the gate replaces the
    scaling (peft computes ``lora_B(lora_A(x)) * scaling``)."""
    from peft.tuners.lora import LoraLayer

    layers = [m for m in model.modules() if isinstance(m, LoraLayer) and ADAPTER_NAME in m.lora_A]
    device = next(model.parameters()).device
    gates = nn.ModuleList(nn.Linear(layer.lora_A[ADAPTER_NAME].in_features, 1) for layer in layers).to(device)
    container(model)["lora_gates"] = gates
    for layer, gate in zip(layers, gates, strict=True):
        box: dict = {}

        def compute(module, args, gate=gate, box=box):
            box["gate"] = sequence_mean(model, torch.sigmoid(gate(args[0])))  # (batch, 1)

        def scale(module, args, output, box=box, scaling=layer.scaling[ADAPTER_NAME]):
            return output * (box.pop("gate").unsqueeze(1) / scaling)

        add_hook(model, layer.register_forward_pre_hook(compute))
        add_hook(model, layer.lora_B[ADAPTER_NAME].register_forward_hook(scale))
    return list(gates.parameters())


@register
@dataclass
class UniPELTConfig(TuningConfig):
    backend = "unipelt"
    prefix_length: int = field(default=10, metadata={"help": "prefix vectors per layer (UniPELT: 10)"})
    prefix_mlp_hidden: int = field(default=512, metadata={"help": "prefix reparameterisation width; 0: none"})
    adapter_bottleneck: int = field(default=48, metadata={"help": "adapter width (UniPELT: 48)"})
    lora_rank: int = field(default=8, metadata={"help": "LoRA rank (UniPELT: 8)"})
    # One rate for all parts (gates included): between the adapter/LoRA (1e-4) and prefix (1e-3) defaults.
    learning_rate: float = 5e-4

    def apply(self, model: nn.Module) -> ParamGroups:
        freeze(model)
        params = attach_adapters(model, self.adapter_bottleneck, None, gated=True)
        prefixes = Prefixes(
            prefix_shape(model, self.prefix_length), hidden_size(model), self.prefix_mlp_hidden or None
        ).to(next(model.parameters()).device)
        container(model)["prefix"] = prefixes
        cache = attach_prefixes(model, prefixes)
        params += list(prefixes.parameters()) + gate_prefixes(model, prefixes, cache)
        params += inject_lora(model, self.lora_rank, float(self.lora_rank), 0.0, None)
        params += gate_lora(model)
        return group(params, self.learning_rate)

    def export(self, model: nn.Module) -> TuningConfig:
        prefixes = container(model)["prefix"]
        if prefixes.reparameterized:
            prefixes.fold()
        return UniPELTConfig(**{**self.__dict__, "prefix_mlp_hidden": 0})
