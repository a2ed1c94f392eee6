"""UniPELT: the adapter, prefix and LoRA pieces of the single backends, each behind a gate."""

from __future__ import annotations

import torch
from torch import nn

from ..adapter.model import attach_adapters
from ..common import ParamGroups, freeze, group
from ..injection import add_hook, attention_modules, container, hidden_size, sequence_mean
from ..lora.model import ADAPTER_NAME, inject_lora
from ..prefix.model import Prefixes, attach_prefixes, prefix_shape


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


def apply(config, model: nn.Module) -> ParamGroups:
    freeze(model)
    params = attach_adapters(model, config.adapter_bottleneck, None, gated=True)
    prefixes = Prefixes(
        prefix_shape(model, config.prefix_length), hidden_size(model), config.prefix_mlp_hidden or None
    ).to(next(model.parameters()).device)
    container(model)["prefix"] = prefixes
    cache = attach_prefixes(model, prefixes)
    params += list(prefixes.parameters()) + gate_prefixes(model, prefixes, cache)
    params += inject_lora(model, config.lora_rank, float(config.lora_rank), 0.0, None)
    params += gate_lora(model)
    return group(params, config.learning_rate)


def export(config, model: nn.Module):
    prefixes = container(model)["prefix"]
    if prefixes.reparameterized:
        prefixes.fold()
    return type(config)(**{**config.__dict__, "prefix_mlp_hidden": 0})
