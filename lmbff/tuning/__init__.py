"""Tuning backends: which parameters of the language model train, selected by name (``--backend``).

Each backend is a module with a config dataclass (a :class:`TuningConfig` subclass) registered here;
adding one never touches another's file (peft's layout).
"""

from __future__ import annotations

from .base import TuningConfig, backend_names, get_config_class, register, trainable_summary
from .full import FullConfig
from .ln import LNConfig

__all__ = [
    "FullConfig",
    "LNConfig",
    "TuningConfig",
    "backend_names",
    "get_config_class",
    "register",
    "trainable_summary",
]
