"""Training recipes: the defaults of ``lmbff train``, ``lmbff run`` and ``PromptClassifier``, and LM-BFF's
protocol as a named preset.

``fast`` (the default) is chosen from this repository's own measurements on 2 CPU cores (Gemma 3 270M,
LM-BFF's 16-shot splits of SST-2 and TREC, 5 seeds; docs/benchmarks/fast_preset.md): the backend and
learning rate with the best dev accuracy per CPU-minute of training (selected on dev, never on test).
``lmbff`` is the paper's protocol (Gao et al. 2021): full fine-tuning, learning rate 1e-5, 1000 steps,
evaluation every 100; about 2 hours a seed on 2 cores.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from .errors import ConfigError


@dataclass(frozen=True)
class Preset:
    name: str
    backend: str
    max_steps: int
    eval_every: int
    description: str
    # Per backend, the learning rate chosen on dev for this preset's budget. A backend without one trains
    # at its own default rate (the backend table's), which is meant for long budgets.
    learning_rates: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    # Per backend, options the preset sets unless given (``--<backend>-<option>``, backend_options).
    backend_options: Mapping[str, Mapping] = field(default_factory=lambda: MappingProxyType({}))
    # Passes over the training examples a run makes at least, unless max_steps is given: the budget
    # grows with the data (TrainingArguments.schedule_for), up to config.EPOCH_STEP_LIMIT steps.
    min_epochs: float = 0.0
    # With the prototype verbalizer (lmbff.prototypes): per backend the rate, and the epochs, chosen on
    # dev for it. Its steps are cheap (one forward pass an example) and its prototypes start from
    # scratch, so it wants more passes than label words, which start from what the model knows.
    prototype_learning_rates: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    prototype_min_epochs: float | None = None


PRESETS: dict[str, Preset] = {
    "fast": Preset(
        "fast",
        backend="lora",
        max_steps=32,
        eval_every=16,
        description="LoRA at 1e-3 for 32 steps, dev at 16 and 32, or one epoch where 32 steps of 8 see "
        "fewer examples than given (dev twice then too): the best dev accuracy per CPU-minute measured here",
        # Issue 36: 32 steps of 8 saw 256 of 616 rows of a 77-class task. One epoch at least, so every
        # example is seen; on LM-BFF's 16-shot tasks (32 to 96 rows) 32 steps already are 3 to 8 epochs,
        # so the rule changes nothing there.
        min_epochs=1.0,
        # Chosen on CLINC150's dev (docs/many_classes.md, "Choosing the prototype recipe").
        prototype_learning_rates=MappingProxyType({"lora": 3e-3}),
        prototype_min_epochs=3.0,
        # Chosen on dev (docs/benchmarks/fast_preset.md and the 100-step sweeps of
        # docs/benchmarks/lmbff_table.md). A union of backends (prefix+ln) keeps each part's own default
        # rate: no union was swept.
        learning_rates=MappingProxyType(
            {
                "lora": 1e-3,
                "ln": 1e-2,
                "unipelt": 5e-4,
                "full": 1e-5,
                "soft-prompt": 1e-1,
                "prefix": 3e-3,
                "adapter": 1e-3,
            }
        ),
    ),
    "lmbff": Preset(
        "lmbff",
        backend="full",
        max_steps=1000,
        eval_every=100,
        description="LM-BFF's protocol: full fine-tuning of every weight (the vocabulary matrices too) at "
        "1e-5, 1000 steps, dev every 100",
        learning_rates=MappingProxyType({"full": 1e-5}),
        # LM-BFF trains every weight; full fine-tuning's own default keeps the vocabulary matrices frozen
        backend_options=MappingProxyType({"full": MappingProxyType({"embeddings": "train"})}),
    ),
}
DEFAULT_PRESET = "fast"

# Median seconds per optimizer step (batch 8) of the embedded default model on 2 CPU cores, per backend
# (benchmarks/results/backend_cost/cost.json, measured alone on the cores): what the time estimate printed
# before training starts uses until the run's own first steps are timed.
MEASURED_SECONDS_PER_STEP = {
    "full": 7.37,
    "ln": 2.71,
    "soft-prompt": 4.00,
    "prefix": 2.85,
    "lora": 2.76,
    "adapter": 2.32,
    "prefix+ln": 2.42,
    "unipelt": 2.62,
    "adapter+prefix+ln": 2.51,
}
MEASURED_MODEL = "gemma-3-270m"


def preset_min_epochs(
    preset: str | None, max_steps: int | None, min_epochs: float | None = None, verbalizer: str | None = None
) -> float:
    """The run's min_epochs: as given, else 0 when max_steps is given (a step count asked for is kept),
    else the preset's (for the prototype verbalizer, its own where the preset has one)."""
    if min_epochs is not None:
        return min_epochs
    if max_steps is not None:
        return 0.0
    chosen = PRESETS[preset or DEFAULT_PRESET]
    if verbalizer == "prototype" and chosen.prototype_min_epochs is not None:
        return chosen.prototype_min_epochs
    return chosen.min_epochs


def resolve(
    preset: str | None,
    backend: str | None,
    learning_rate: float | None,
    max_steps: int | None,
    eval_every: int | None,
    verbalizer: str | None = None,
) -> tuple[str, float | None, int, int]:
    """(backend, learning rate, max steps, eval every) from explicit values, else the preset's.

    A backend given explicitly trains at the preset's rate for that backend when the preset has one
    (chosen on dev for the preset's budget; with the prototype verbalizer, its own rate where the
    preset has one), else at the backend's own default rate; a ``learning_rate`` given wins over all.

    Raises:
        ConfigError: an unknown preset.
    """
    name = preset or DEFAULT_PRESET
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; one of {', '.join(PRESETS)}")
    chosen = PRESETS[name]
    backend = chosen.backend if backend is None else backend
    if learning_rate is None and verbalizer == "prototype":
        learning_rate = chosen.prototype_learning_rates.get(backend)
    if learning_rate is None:
        learning_rate = chosen.learning_rates.get(backend)
    return (
        backend,
        learning_rate,
        chosen.max_steps if max_steps is None else max_steps,
        chosen.eval_every if eval_every is None else eval_every,
    )


def preset_backend_options(
    preset: str | None, backend: str, options: Mapping[str, Mapping] | None
) -> dict[str, dict]:
    """The backend options a run uses: those given, over the preset's for the backends it names.

    Raises:
        ConfigError: an unknown preset.
    """
    name = preset or DEFAULT_PRESET
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; one of {', '.join(PRESETS)}")
    merged = {part: dict(PRESETS[name].backend_options.get(part, {})) for part in backend.split("+")}
    for part, values in (options or {}).items():
        merged.setdefault(part, {}).update(values)
    return {part: values for part, values in merged.items() if values}


def estimate_seconds(
    model: str, backend: str, steps: int, options: Mapping[str, Mapping] | None = None
) -> float | None:
    """Training seconds expected on 2 CPU cores, for the embedded default model; None otherwise (another
    model, or backend options other than those measured: each backend at its options' former values)."""
    from .tuning import distinctive_options

    if model != MEASURED_MODEL or backend not in MEASURED_SECONDS_PER_STEP:
        return None
    if distinctive_options({k: dict(v) for k, v in (options or {}).items()}):
        return None
    return MEASURED_SECONDS_PER_STEP[backend] * steps


def format_duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def plan_text(configs: list, preset: str | None) -> str:
    """A few lines saying what runs will train and, for the embedded default model, how long that takes
    on 2 CPU cores (measured per backend); the trainer times its own first steps and says so too."""
    trained = [c for c in configs if c.method != "zero-shot"]
    first = configs[0]
    methods_in: dict[str, dict[str, None]] = {}  # resolved precision -> the methods run in it
    for c in configs:
        methods_in.setdefault(c.resolved_precision, {})[c.method] = None
    if len(methods_in) == 1:
        shown = next(iter(methods_in))
    else:  # auto keeps some backends in fp32 (their TuningConfig.auto_precision)
        shown = ", ".join(f"{p} for {'/'.join(methods)}" for p, methods in methods_in.items())
    if first.precision == "auto":
        from .precision import auto_reason

        reasons = {
            auto_reason(c.resolved_precision, c.backend if c.method != "zero-shot" else None): None
            for c in configs
        }
        shown += f" ({'; '.join(reasons)})"
    lines = [
        f"plan: {len(configs)} run(s) of {first.task} on {first.model} "
        f"in {shown} (preset {preset or DEFAULT_PRESET}; "
        "--preset lmbff is LM-BFF's full fine-tuning, 1000 steps)"
    ]
    total = 0.0
    known = True
    for (method, backend, named, lr, steps), group in _groups(trained).items():
        rate = f"learning rate {lr}" if lr is not None else "the backend's learning rate"
        batch = group[0].training.batch_size
        line = f"  {len(group)} x {method}: backend {backend}{named}, {rate}, {steps} steps of batch {batch}"
        # measured in fp32 only: bf16's speed depends on the hardware (lmbff.precision)
        measured = group[0].resolved_precision == "fp32"
        options = group[0].backend_options
        seconds = estimate_seconds(first.model, backend, steps, options) if measured else None
        if seconds is None:
            known = False
        else:
            total += seconds * len(group) * (2 if method == "prompt-demos" else 1)
            line += f", about {format_duration(seconds)} of training each on 2 CPU cores"
        lines.append(line)
    if trained and known:
        lines.append(
            f"  expected training time: about {format_duration(total)} in all on 2 CPU cores "
            "(plus scoring dev and test); the first steps are timed and the estimate is updated"
        )
    elif trained:
        lines.append("  the time per step is measured on the first steps and the estimate printed then")
    return "\n".join(lines)


def _groups(configs: list) -> dict[tuple, list]:
    from .tuning import distinctive_options

    groups: dict[tuple, list] = {}
    for c in configs:
        options = distinctive_options(c.backend_options)
        named = ", ".join(f"{k}={v}" for part in sorted(options) for k, v in sorted(options[part].items()))
        named = f" ({named})" if named else ""
        key = (c.method, c.backend, named, c.training.learning_rate, c.training.max_steps)
        groups.setdefault(key, []).append(c)
    return groups
