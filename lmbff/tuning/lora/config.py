"""LoRA (Hu et al. 2021): low-rank updates of the attention projections, through peft.

peft's ``inject_adapter_in_model`` adds the LoRA layers in place (no model wrapper, so the prompt
model keeps calling the language model as before) and knows each architecture's attention
projections (BERT/RoBERTa ``query``/``value``, GPT-2 ``c_attn``, Llama/Gemma ``q_proj``/``v_proj``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..base import TuningConfig, register


@register
@dataclass
class LoraTuningConfig(TuningConfig):
    backend = "lora"
    implementation = "lmbff.tuning.lora.model"
    rank: int = field(default=8, metadata={"help": "rank of the update (UniPELT: 8)"})
    alpha: float = field(default=16.0, metadata={"help": "scaling: alpha / rank"})
    dropout: float = field(default=0.0, metadata={"help": "dropout on the LoRA input"})
    target_modules: list[str] | None = field(
        default=None, metadata={"help": "module names to adapt (default: peft's per-architecture table)"}
    )
    learning_rate: float = 1e-4  # B starts at zero: updates need ~10x full tuning's rate
