"""The ``lora`` backend: its torch-free config and its implementation (``model``)."""

from .config import LoraTuningConfig

__all__ = ["LoraTuningConfig"]
