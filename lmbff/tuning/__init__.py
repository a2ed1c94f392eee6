"""Tuning backends: which parameters of the language model train, selected by name (``--backend``).

One folder per backend (peft's layout): ``<backend>/config.py`` holds its torch-free config dataclass
(a :class:`TuningConfig` subclass, registered by name), ``<backend>/model.py`` its implementation,
imported only when the method is applied. Adding a backend is one new folder and one import line below;
it never touches another backend's files. ``a+b`` combines backends.
"""

from __future__ import annotations

from .adapter import AdapterConfig
from .base import (
    CombinedConfig,
    TuningConfig,
    backend_names,
    config_from_dict,
    distinctive_options,
    get_config_class,
    make_config,
    pin_changed_defaults,
    pinned_options,
    register,
)
from .bitfit import BitFitConfig
from .full import FullConfig
from .ln import LNConfig
from .lora import LoraTuningConfig
from .prefix import PrefixConfig
from .soft_prompt import SoftPromptConfig
from .unipelt import UniPELTConfig


def trainable_summary(model) -> tuple[int, int]:
    """(trainable parameters, all parameters), counting tied weights once."""
    from .common import trainable_summary as count

    return count(model)


def detach(model) -> None:
    """Remove every added module, hook and peft layer: the model is its frozen base again."""
    from .injection import detach as remove

    remove(model)


__all__ = [
    "AdapterConfig",
    "BitFitConfig",
    "CombinedConfig",
    "FullConfig",
    "LNConfig",
    "LoraTuningConfig",
    "PrefixConfig",
    "SoftPromptConfig",
    "TuningConfig",
    "UniPELTConfig",
    "backend_names",
    "config_from_dict",
    "detach",
    "distinctive_options",
    "get_config_class",
    "make_config",
    "pin_changed_defaults",
    "pinned_options",
    "register",
    "trainable_summary",
]
