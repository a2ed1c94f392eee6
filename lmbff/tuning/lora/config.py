"""LoRA (Hu et al. 2021): low-rank updates of the attention projections, through peft.

peft's ``inject_adapter_in_model`` adds the LoRA layers in place (no model wrapper, so the prompt
model keeps calling the language model as before) and knows each architecture's attention
projections (BERT/RoBERTa ``query``/``value``, GPT-2 ``c_attn``, Llama/Gemma ``q_proj``/``v_proj``).
"""

from __future__ import annotations

from dataclasses import dataclass

from ...options import option
from ..base import TuningConfig, register


@register
@dataclass
class LoraTuningConfig(TuningConfig):
    backend = "lora"
    implementation = "lmbff.tuning.lora.model"
    rank: int = option(8, help="rank of the update (UniPELT: 8)", low=1)
    alpha: float = option(16.0, help="scaling: alpha / rank", low=0, low_open=True)
    dropout: float = option(0.0, help="dropout on the LoRA input", low=0, high=1, high_open=True)
    target_modules: list[str] | None = option(
        None, help="module names to adapt (default: peft's per-architecture table)"
    )
    learning_rate: float = 1e-4  # B starts at zero: updates need ~10x full tuning's rate
