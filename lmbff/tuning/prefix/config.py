"""Prefix tuning (Li & Liang 2021): trained key/value vectors prepended in every attention layer.

Written by hand because peft's prefix tuning does not accept ``*ForMaskedLM`` models (peft issue 116,
transformers issue 26578) and cannot be mixed with other methods. It is done through transformers'
own attention-function registry: the model's attention implementation is switched to one that
prepends the layer's prefix to the keys and values (and opens the mask to them) before calling SDPA,
so every model whose attention goes through that registry (BERT, RoBERTa, GPT-2, Llama, Gemma, ...)
gets prefixes with no per-architecture code, and positions are untouched.

During training the prefixes can be reparameterised by a small MLP (Li & Liang's stabiliser);
:meth:`PrefixConfig.export` folds it away, so the saved state holds only the prefixes.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...options import option
from ..base import TuningConfig, register


@register
@dataclass
class PrefixConfig(TuningConfig):
    backend = "prefix"
    implementation = "lmbff.tuning.prefix.model"
    length: int = option(10, help="prefix vectors per layer (UniPELT: 10)", low=1)
    mlp_hidden: int = option(
        512, help="reparameterising MLP width during training; 0: none (Li & Liang: 512)", low=0
    )
    # Prefixes start random, far from useful keys/values: a large step for a few-shot budget.
    learning_rate: float = 1e-3
