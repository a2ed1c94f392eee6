"""The distillation recipe, torch-free (the command line builds its options from it)."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import DEFAULT_EMBEDDER
from ..options import check_options, option


@dataclass
class DistillConfig:
    """How a student learns from a teacher's soft labels (PET, Schick and Schütze 2021: an ordinary
    classifier trained on the prompt models' probabilities over unlabelled texts; Hinton et al.'s
    temperature)."""

    student: str = option(
        DEFAULT_EMBEDDER,
        help="the student's encoder: a Hugging Face encoder folder or name (default: all-MiniLM-L6-v2)",
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
    seed: int = option(42, help="seed for shuffling and the head's initialisation", low=0, high=2**32 - 1)

    def __post_init__(self):
        check_options(self, "distillation option")
