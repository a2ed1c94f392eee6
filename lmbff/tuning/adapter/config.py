"""Bottleneck adapters after multi-head attention (Houlsby et al. 2019).

Written by hand because the ``adapters`` library pins transformers 4.x (this toolkit is on v5) and
peft has no Houlsby adapter. A forward hook on each attention output projection adds
``up(act(down(h)))`` to its output ``h``, before the residual connection; ``up`` starts at zero, so
training starts from the unchanged model.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...options import option
from ..base import TuningConfig, register


@register
@dataclass
class AdapterConfig(TuningConfig):
    backend = "adapter"
    implementation = "lmbff.tuning.adapter.model"
    bottleneck: int = option(48, help="adapter width (UniPELT: 48)", low=1)
    target_modules: list[str] | None = option(
        None, help="module names to follow (default: each attention output projection)"
    )
    learning_rate: float = 1e-4  # new, zero-initialised weights: ~10x full tuning's rate
