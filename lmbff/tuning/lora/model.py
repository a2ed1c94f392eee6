"""LoRA through peft's ``inject_adapter_in_model`` (in place, no model wrapper)."""

from __future__ import annotations

from torch import nn

from ...errors import ModelError
from ..common import ParamGroups, freeze, group

ADAPTER_NAME = "lmbff"


def inject_lora(
    model: nn.Module, rank: int, alpha: float, dropout: float, target_modules
) -> list[nn.Parameter]:
    from peft import LoraConfig, inject_adapter_in_model

    config = LoraConfig(
        r=rank,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=list(target_modules) if target_modules else None,
    )
    try:
        inject_adapter_in_model(config, model, adapter_name=ADAPTER_NAME)
    except ValueError as error:  # no default projections for this model type, or names that match nothing
        raise ModelError(f"LoRA on {type(model).__name__}: {error} (set target_modules)") from error
    return [p for name, p in model.named_parameters() if ".lora_" in name and f".{ADAPTER_NAME}." in name]


def apply(config, model: nn.Module) -> ParamGroups:
    freeze(model)
    params = inject_lora(model, config.rank, config.alpha, config.dropout, config.target_modules)
    return group(params, config.learning_rate)
