"""Full prompt-based fine-tuning (LM-BFF): every parameter trains; ``embeddings="frozen"`` (lean full
fine-tuning) keeps the vocabulary matrices (input embeddings and output layer, tied or not) as they are."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ..base import TuningConfig, register

EMBEDDINGS = ("train", "frozen")


@register
@dataclass
class FullConfig(TuningConfig):
    backend = "full"
    implementation = "lmbff.tuning.full.model"
    learning_rate: float = 1e-5  # LM-BFF's default (Gao et al. 2021)
    embeddings: Literal["train", "frozen"] = field(
        default="train",
        metadata={
            "help": "train: every weight trains (LM-BFF); frozen: all but the vocabulary matrices, whose "
            "AdamW update touches every row although a few-shot batch uses a few hundred"
        },
    )

    def __post_init__(self):
        super().__post_init__()
        if self.embeddings not in EMBEDDINGS:
            raise ValueError(
                f"full option embeddings must be one of {', '.join(EMBEDDINGS)}, got {self.embeddings!r}"
            )
