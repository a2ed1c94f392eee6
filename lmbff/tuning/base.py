"""The backend registry and the base config."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import ClassVar

from torch import nn

_REGISTRY: dict[str, type[TuningConfig]] = {}


@dataclass
class TuningConfig:
    """What trains, and the learning rate that suits it (LM-BFF's default 1e-5 is for full tuning)."""

    backend: ClassVar[str] = ""
    learning_rate: float = field(default=1e-5, metadata={"help": "AdamW learning rate for this backend"})

    def apply(self, model: nn.Module) -> list[nn.Parameter]:
        """Freeze what does not train; return the parameters that do."""
        raise NotImplementedError

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
