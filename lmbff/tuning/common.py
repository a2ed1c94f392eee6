"""What every backend's implementation shares: freezing, parameter groups, counting (torch)."""

from __future__ import annotations

from torch import nn

from .base import ParamGroups

__all__ = ["ParamGroups", "freeze", "group", "trainable_summary"]


def freeze(model: nn.Module) -> None:
    for p in model.parameters():
        p.requires_grad_(False)


def group(params: list[nn.Parameter], lr: float) -> ParamGroups:
    for p in params:
        p.requires_grad_(True)
    return [{"params": params, "lr": lr}]


def trainable_summary(model: nn.Module) -> tuple[int, int]:
    """(trainable parameters, all parameters), counting tied weights once."""
    seen, trainable, total = set(), 0, 0
    for p in model.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        total += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    return trainable, total
