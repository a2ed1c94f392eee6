"""Full prompt-based fine-tuning (LM-BFF). By default lean: every parameter trains but the vocabulary
matrices (input embeddings and output layer, tied or not), which stay as they are; ``embeddings="train"``
trains those too, as LM-BFF does (``--preset lmbff``).

Lean is the default because it held accuracy at about half the time and memory on the embedded model
(docs/benchmarks/lmbff_table.md, "Full fine-tuning and lean full"). States and runs saved before the
option existed trained every weight, and are read so (``legacy_values``). ``auto`` precision keeps full
fine-tuning in fp32, which bf16 barely sped up (docs/benchmarks/precision.md)."""

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
    auto_precision = "fp32"  # its float32 AdamW update of every weight does not get faster in bf16
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
