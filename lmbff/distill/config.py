"""The distillation recipe, torch-free (the command line builds its options from it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..config import DEFAULT_EMBEDDER
from ..options import check_options, option

# the student that is the teacher's own model with layers dropped (lmbff.distill.prompt_student)
LAYER_STUDENT = "teacher-layers"


@dataclass
class DistillConfig:
    """How a student learns from a teacher's soft labels (PET, Schick and Schütze 2021: an ordinary
    classifier trained on the prompt models' probabilities over unlabelled texts; Hinton et al.'s
    temperature)."""

    student: str = option(
        DEFAULT_EMBEDDER,
        help="the student: a Hugging Face encoder folder or name (default: all-MiniLM-L6-v2), or "
        f"{LAYER_STUDENT!r}: a copy of the teacher's own model with every k-th layer kept",
    )
    temperature: float = option(
        2.0,
        help="softens teacher and student alike; the loss is scaled by its square",
        low=0,
        low_open=True,
        high=20,
    )
    gold_weight: float = option(
        0.0,
        help="share of the loss given to the labelled examples' gold labels (0: soft labels only)",
        low=0,
        high=1,
    )
    epochs: int = option(3, help="passes over the unlabelled texts", low=1, high=1000)
    batch_size: int = option(32, help="texts per optimizer step", low=1)
    learning_rate: float = option(5e-5, help="AdamW learning rate of the student", low=0, low_open=True)
    weight_decay: float = option(0.01, help="AdamW weight decay", low=0)
    max_length: int = option(128, help="the student's token budget per text", low=8, high=4096)
    max_unlabelled: int = option(20000, help="unlabelled texts used at most (the first ones)", low=1)
    keep_every: int = option(
        2, help=f"{LAYER_STUDENT}: keep every k-th layer of the teacher (the last one always)", low=1
    )
    hidden_weight: float = option(
        1.0, help=f"{LAYER_STUDENT}: weight of TinyBERT's embedding and hidden-state losses", low=0
    )
    attention_weight: float = option(1.0, help=f"{LAYER_STUDENT}: weight of TinyBERT's attention loss", low=0)
    train_embeddings: bool = option(
        False, help=f"{LAYER_STUDENT}: train the token embeddings too (and the output layer tied to them)"
    )
    seed: int = option(42, help="seed for shuffling and the head's initialisation", low=0, high=2**32 - 1)

    def __post_init__(self):
        check_options(self, "distillation option")


@dataclass
class Compression:
    """What ``lmbff compress`` does to a model."""

    weights: Literal["fp32", "bf16", "int8"] | None = option(
        None, help="the weights' form: fp32, bf16 or int8 (dynamic int8 linear layers); default: as they are"
    )
    prune: float = option(
        0.0,
        help="fraction of each linear layer's weights set to zero (magnitude)",
        low=0,
        high=1,
        high_open=True,
    )

    def __post_init__(self):
        check_options(self, "compression")

    def describe(self) -> str:
        parts = [self.weights or "weights as they were"]
        if self.prune:
            parts.append(f"{self.prune:.0%} of each linear layer's weights pruned by magnitude")
        return ", ".join(parts)
