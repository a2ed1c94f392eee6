"""Full prompt-based fine-tuning (LM-BFF). By default lean: every parameter trains but the vocabulary
matrices (input embeddings and output layer, tied or not), which stay as they are; ``embeddings="train"``
trains those too, as LM-BFF does (``--preset lmbff``).

Lean is the default because it held accuracy at half the cost on the embedded model (Gemma 3 270M,
LM-BFF's 16-shot splits, 5 seeds, 100 steps; benchmarks/results/lmbff_table): SST-2 84.1 against 83.0,
TREC 78.8 against 78.7; on TREC (one machine) 1.9 against 3.9 minutes a run and 3.5 against 7.3 GB
peak (README, "Lean full fine-tuning"). States and runs saved before the option existed trained every
weight, and are read so (``legacy_values``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from ...options import option
from ..base import TuningConfig, register

EMBEDDINGS = ("train", "frozen")


@register
@dataclass
class FullConfig(TuningConfig):
    backend = "full"
    implementation = "lmbff.tuning.full.model"
    learning_rate: float = 1e-5  # LM-BFF's default (Gao et al. 2021)
    embeddings: Literal["train", "frozen"] = option(
        "frozen",
        help="frozen: all but the vocabulary matrices train (their AdamW update touches every row "
        "although a few-shot batch uses a few hundred); train: every weight trains, as in LM-BFF "
        "(--preset lmbff)",
    )
    legacy_values: ClassVar[dict[str, Any]] = {
        "embeddings": "train"
    }  # before lean full fine-tuning became the default
