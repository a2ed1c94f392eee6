"""The ``ln`` backend: its torch-free config and its implementation (``model``)."""

from .config import LNConfig

__all__ = ["LNConfig"]
