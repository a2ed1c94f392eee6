"""From a tuned prompt model to a small, fast classifier (issue 38): a teacher (saved states, an ensemble
of them, or a fitted PromptClassifier) labels unlabelled texts with its class probabilities, and a
student learns them (:mod:`lmbff.distill.run`): a sentence encoder with a classification head, or a copy
of the teacher's own model with every k-th layer kept (:mod:`lmbff.distill.prompt_student`, TinyBERT's
intermediate losses from :mod:`lmbff.layer_drop`). A tuned model or a student compresses to bf16, int8
or pruned weights (:mod:`lmbff.distill.compress`). Every student or compressed model is a
self-contained folder (:mod:`lmbff.distill.student`) that ``PromptClassifier.load`` and ``lmbff
predict`` read.

Names load on first use (PEP 562): the command line reads :mod:`lmbff.distill.config` for its options
without importing torch."""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Compression": "config",
    "DistillConfig": "config",
    "LAYER_STUDENT": "config",
    "compress_state": "compress",
    "compress_student": "compress",
    "distill_layers": "prompt_student",
    "distill": "run",
    "read_unlabelled": "sources",
    "teacher_from_states": "run",
    "train_student": "run",
    "EncoderStudent": "student",
    "StudentClassifier": "student",
    "is_student": "folder",
    "load_student": "student",
}
__all__ = [
    "LAYER_STUDENT",
    "Compression",
    "DistillConfig",
    "EncoderStudent",
    "StudentClassifier",
    "compress_state",
    "compress_student",
    "distill",
    "distill_layers",
    "is_student",
    "load_student",
    "read_unlabelled",
    "teacher_from_states",
    "train_student",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'lmbff.distill' has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
