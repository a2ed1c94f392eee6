"""Tuning backends: which parameters of the language model train, selected by name (``--backend``).

Each backend is a module with a config dataclass (a :class:`TuningConfig` subclass) registered here;
adding one never touches another's file (peft's layout). ``a+b`` combines backends.
"""

from __future__ import annotations

from .adapter import AdapterConfig
from .base import (
    CombinedConfig,
    TuningConfig,
    backend_names,
    config_from_dict,
    get_config_class,
    make_config,
    register,
    trainable_summary,
)
from .bitfit import BitFitConfig
from .full import FullConfig
from .injection import detach
from .ln import LNConfig
from .lora import LoraTuningConfig
from .prefix import PrefixConfig
from .prompt import PromptTuningConfig
from .unipelt import UniPELTConfig

__all__ = [
    "AdapterConfig",
    "BitFitConfig",
    "CombinedConfig",
    "FullConfig",
    "LNConfig",
    "LoraTuningConfig",
    "PrefixConfig",
    "PromptTuningConfig",
    "TuningConfig",
    "UniPELTConfig",
    "backend_names",
    "config_from_dict",
    "detach",
    "get_config_class",
    "make_config",
    "register",
    "trainable_summary",
]
