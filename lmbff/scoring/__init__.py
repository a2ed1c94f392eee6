"""Scoring modes: how a label word is read from a language model through a cloze prompt.

One module per mode, each a :class:`ScoringMode` registered by name: ``mask`` (masked LMs: the word's
tokens at mask positions), ``next_token`` (causal LMs, slot at the end: the word as the continuation),
``sequence`` (causal LMs, text after the slot: the filled sequence). ``shared_prefix`` is how causal
modes run the text before the slot once per example at inference, and ``calibration`` is contextual
calibration, in one place. :class:`lmbff.model.PromptModel` composes an encoder, a verbalizer and a
mode; adding a mode is one new module whose class is registered with :func:`register_mode`.
"""

from __future__ import annotations

from .base import MODES, Scorer, ScoringMode, default_mode, get_mode, mode_names, register_mode
from .filled_sequence import FilledSequence
from .masked_slot import MaskedSlot
from .next_token import NextToken

__all__ = [
    "MODES",
    "FilledSequence",
    "MaskedSlot",
    "NextToken",
    "Scorer",
    "ScoringMode",
    "default_mode",
    "get_mode",
    "mode_names",
    "register_mode",
]
