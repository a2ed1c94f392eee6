"""Contextual calibration (Zhao et al. 2021), in one place: the content-free inputs, and dividing label
probabilities by theirs and renormalising, on tensors (inside a PromptModel) and on arrays (post hoc)."""

from __future__ import annotations

import numpy as np

CONTENT_FREE = ("N/A", "", "[MASK]")  # Zhao et al. 2021's content-free inputs


def calibrate_log_scores(class_scores, log_content_free):
    """Tensor version: class log-probabilities (B, C) calibrated by log content-free probabilities (C,)."""
    return (class_scores - log_content_free.to(class_scores.device)).log_softmax(dim=1)


def apply_calibration(log_scores: np.ndarray, content_free_probs: np.ndarray) -> np.ndarray:
    """Array version: divide label probabilities by the content-free ones and renormalise."""
    shifted = log_scores - np.log(content_free_probs)[None, :]
    return shifted - np.logaddexp.reduce(shifted, axis=1, keepdims=True)
