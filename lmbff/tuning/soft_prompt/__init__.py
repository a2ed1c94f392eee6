"""The ``soft-prompt`` backend: its torch-free config and its implementation (``model``)."""

from .config import SoftPromptConfig

__all__ = ["SoftPromptConfig"]
