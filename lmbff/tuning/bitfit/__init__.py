"""The ``bitfit`` backend: its torch-free config and its implementation (``model``)."""

from .config import BitFitConfig

__all__ = ["BitFitConfig"]
