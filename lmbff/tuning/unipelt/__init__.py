"""The ``unipelt`` backend: its torch-free config and its implementation (``model``)."""

from .config import UniPELTConfig

__all__ = ["UniPELTConfig"]
