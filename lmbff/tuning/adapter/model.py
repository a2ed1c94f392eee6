"""Houlsby adapters: a forward hook on each attention output projection adds up(act(down(h)))."""

from __future__ import annotations

import torch
from torch import nn

from ..common import ParamGroups, freeze, group
from ..injection import (
    ATTENTION_OUTPUT_SUFFIXES,
    add_hook,
    container,
    find_modules,
    hidden_size,
    sequence_mean,
)


class Adapter(nn.Module):
    def __init__(self, hidden: int, bottleneck: int, gated: bool = False):
        super().__init__()
        self.down = nn.Linear(hidden, bottleneck)
        self.up = nn.Linear(bottleneck, hidden)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)
        # UniPELT: the adapter's output scaled by sigmoid(Linear(its input)), averaged over the sequence
        self.gate = nn.Linear(hidden, 1) if gated else None

    def forward(self, h: torch.Tensor, model: nn.Module) -> torch.Tensor:
        delta = self.up(torch.relu(self.down(h)))
        if self.gate is not None:
            g = sequence_mean(model, torch.sigmoid(self.gate(h)))  # (batch, 1)
            delta = delta * g.unsqueeze(1)
        return h + delta


def attach_adapters(model: nn.Module, bottleneck: int, target_modules, gated: bool) -> list[nn.Parameter]:
    targets = find_modules(
        model, tuple(target_modules or ATTENTION_OUTPUT_SUFFIXES), "attention output projection"
    )
    device = next(model.parameters()).device
    adapters = nn.ModuleList(Adapter(hidden_size(model), bottleneck, gated) for _ in targets).to(device)
    container(model)["adapter"] = adapters
    for (_, module), adapter in zip(targets, adapters, strict=True):

        def hook(module, args, output, adapter=adapter):
            return adapter(output, model)

        add_hook(model, module.register_forward_hook(hook))
    return list(adapters.parameters())


def apply(config, model: nn.Module) -> ParamGroups:
    freeze(model)
    return group(
        attach_adapters(model, config.bottleneck, config.target_modules, gated=False), config.learning_rate
    )
