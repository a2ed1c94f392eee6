"""LoRA (Hu et al. 2021): low-rank updates of the attention projections, through peft.

peft's ``inject_adapter_in_model`` adds the LoRA layers in place (no model wrapper, so the prompt
model keeps calling the language model as before) and knows each architecture's attention
projections (BERT/RoBERTa ``query``/``value``, GPT-2 ``c_attn``, Llama/Gemma ``q_proj``/``v_proj``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from .base import ParamGroups, TuningConfig, freeze, group, register

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
        raise ValueError(f"LoRA on {type(model).__name__}: {error} (set target_modules)") from error
    return [p for name, p in model.named_parameters() if ".lora_" in name and f".{ADAPTER_NAME}." in name]


@register
@dataclass
class LoraTuningConfig(TuningConfig):
    backend = "lora"
    rank: int = field(default=8, metadata={"help": "rank of the update (UniPELT: 8)"})
    alpha: float = field(default=16.0, metadata={"help": "scaling: alpha / rank"})
    dropout: float = field(default=0.0, metadata={"help": "dropout on the LoRA input"})
    target_modules: list[str] | None = field(
        default=None, metadata={"help": "module names to adapt (default: peft's per-architecture table)"}
    )
    learning_rate: float = 1e-4  # B starts at zero: updates need ~10x full tuning's rate

    def apply(self, model: nn.Module) -> ParamGroups:
        freeze(model)
        params = inject_lora(model, self.rank, self.alpha, self.dropout, self.target_modules)
        return group(params, self.learning_rate)
