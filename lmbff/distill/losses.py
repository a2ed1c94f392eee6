"""The prediction loss both students learn from the teacher's probabilities (Hinton et al. 2015)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def tempered_targets(probabilities: np.ndarray, temperature: float) -> torch.Tensor:
    """The teacher's probabilities (N, C) re-tempered as a softmax of ``log p / T``."""
    targets = torch.tensor(probabilities, dtype=torch.float32)
    return torch.softmax(targets.clamp_min(1e-12).log() / temperature, dim=-1)


def soft_loss(scores: torch.Tensor, tempered: torch.Tensor, temperature: float) -> torch.Tensor:
    """``T² KL(teacher_T || student_T)`` for a batch of the student's logits or log-probabilities (the T²
    keeps gradients the same size across temperatures)."""
    return F.kl_div((scores / temperature).log_softmax(-1), tempered, reduction="batchmean") * temperature**2
