"""The ``adapter`` backend: its torch-free config and its implementation (``model``)."""

from .config import AdapterConfig

__all__ = ["AdapterConfig"]
