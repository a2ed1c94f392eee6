"""The backend registry, the base config and combinations (``prefix+ln``)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar

from torch import nn

_REGISTRY: dict[str, type[TuningConfig]] = {}

ParamGroups = list[dict[str, Any]]
"""torch optimizer parameter groups: ``[{"params": [...], "lr": ...}, ...]``."""


@dataclass
class TuningConfig:
    """What trains, and the learning rate that suits it (LM-BFF's default 1e-5 is for full tuning).

    A backend either marks some of the model's own parameters trainable (full, ln, bitfit) or adds
    parameters (soft prompt, prefixes, LoRA, adapters), which live under ``model.lmbff_tuning`` or in
    peft's layers so that ``named_parameters()`` names every trained tensor.
    """

    backend: ClassVar[str] = ""
    learning_rate: float = field(default=1e-5, metadata={"help": "AdamW learning rate for this backend"})

    def __post_init__(self):
        """Every number is checked where it is set, so the CLI and the Python API say the same thing."""
        for f in fields(self):
            value = getattr(self, f.name)
            where = f"{self.backend or 'backend'} option {f.name}"
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if not math.isfinite(value):
                raise ValueError(f"{where} must be a finite number, got {value!r}")
            if f.name == "dropout":
                if not 0 <= value < 1:
                    raise ValueError(f"{where} must be in [0, 1), got {value!r}")
            elif f.name.endswith("mlp_hidden"):  # 0 means no reparameterisation
                if value < 0 or value != int(value):
                    raise ValueError(f"{where} must be a whole number of at least 0, got {value!r}")
            elif value <= 0:
                raise ValueError(f"{where} must be positive, got {value!r}")

    def apply(self, model: nn.Module) -> ParamGroups:
        """Freeze what does not train, add what the method adds; return the parameter groups that train."""
        raise NotImplementedError

    def prepare(self, scorer) -> None:
        """Adjust the scorer's encoder to the method (prompt tuning reserves its virtual tokens)."""

    def export(self, model: nn.Module) -> TuningConfig:
        """After training: fold training-only reparameterisations into the parameters they produce and
        return the config that describes the saved state (the same config for most methods)."""
        return self

    def to_dict(self) -> dict:
        return {"backend": self.backend, **asdict(self)}


def register(cls: type[TuningConfig]) -> type[TuningConfig]:
    _REGISTRY[cls.backend] = cls
    return cls


def backend_names() -> list[str]:
    return sorted(_REGISTRY)


def get_config_class(name: str) -> type[TuningConfig]:
    """The config class of a backend. Raises KeyError listing the known backends."""
    if name not in _REGISTRY:
        raise KeyError(f"unknown tuning backend {name!r}; known: {', '.join(backend_names())}")
    return _REGISTRY[name]


def freeze(model: nn.Module) -> None:
    for p in model.parameters():
        p.requires_grad_(False)


def group(params: list[nn.Parameter], lr: float) -> ParamGroups:
    for p in params:
        p.requires_grad_(True)
    return [{"params": params, "lr": lr}]


@dataclass
class CombinedConfig(TuningConfig):
    """Several backends at once (``prefix+ln``, ``adapter+prefix+ln``: LN-tuning's unified framework,
    Qi et al. 2022): the union of what each trains, each part at its own learning rate (the
    combination's own ``learning_rate`` is the smallest of them, for display; ``--learning-rate``
    sets one rate for all parts)."""

    parts: list[TuningConfig] = field(default_factory=list)

    @property
    def name(self) -> str:
        return "+".join(p.backend for p in self.parts)

    def apply(self, model: nn.Module) -> ParamGroups:
        freeze(model)
        groups: ParamGroups = []
        seen: set[int] = set()
        for part in self.parts:
            for g in _apply_keep(part, model):
                params = [p for p in g["params"] if id(p) not in seen]
                seen.update(map(id, params))
                if params:
                    groups.append({**g, "params": params})
        return groups

    def prepare(self, scorer) -> None:
        for part in self.parts:
            part.prepare(scorer)

    def export(self, model: nn.Module) -> TuningConfig:
        return CombinedConfig(learning_rate=self.learning_rate, parts=[p.export(model) for p in self.parts])

    def to_dict(self) -> dict:
        return {"backend": self.name, "parts": [p.to_dict() for p in self.parts]}


def _apply_keep(part: TuningConfig, model: nn.Module) -> ParamGroups:
    """Apply one part of a combination without undoing the parts applied before it: every backend
    freezes the whole model first, so the earlier parts' trainable flags are restored afterwards."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    groups = part.apply(model)
    for p in trainable:
        p.requires_grad_(True)
    return groups


def make_config(name: str, options: dict[str, dict] | None = None, **overrides) -> TuningConfig:
    """The config of ``name`` (one backend or ``a+b+c``), with per-backend options such as
    ``{"prefix": {"length": 20}}``. Raises KeyError for an unknown backend or option."""
    options = options or {}
    unknown = set(options) - set(name.split("+"))
    if unknown:
        raise KeyError(f"options for {', '.join(sorted(unknown))}, which backend {name!r} does not use")

    def one(backend: str) -> TuningConfig:
        cls = get_config_class(backend)
        known = {f.name for f in fields(cls)}
        given = options.get(backend, {})
        bad = set(given) - known
        if bad:
            raise KeyError(
                f"backend {backend!r} has no option {', '.join(sorted(bad))}; it has {sorted(known)}"
            )
        return cls(**given)

    names = name.split("+")
    if len(names) != len(set(names)):
        raise KeyError(f"backend {name!r} names a method twice")
    if len(names) == 1:
        return one(name)
    return CombinedConfig(
        learning_rate=min(one(n).learning_rate for n in names), parts=[one(n) for n in names]
    )


def config_from_dict(data: dict) -> TuningConfig:
    """Rebuild a config saved by ``to_dict`` (a saved state's config.json)."""
    if "parts" in data:
        return CombinedConfig(parts=[config_from_dict(p) for p in data["parts"]])
    values = {k: v for k, v in data.items() if k != "backend"}
    return get_config_class(data["backend"])(**values)


def trainable_summary(model: nn.Module) -> tuple[int, int]:
    """(trainable parameters, all parameters), counting tied weights once."""
    seen, trainable, total = set(), 0, 0
    for p in model.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        total += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    return trainable, total
