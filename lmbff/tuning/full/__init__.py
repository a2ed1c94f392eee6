"""The ``full`` backend: its torch-free config and its implementation (``model``)."""

from .config import FullConfig

__all__ = ["FullConfig"]
