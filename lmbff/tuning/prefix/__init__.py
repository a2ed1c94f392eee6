"""The ``prefix`` backend: its torch-free config and its implementation (``model``)."""

from .config import PrefixConfig

__all__ = ["PrefixConfig"]
