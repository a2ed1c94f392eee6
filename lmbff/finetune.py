"""The standard fine-tuning baseline: a new classification head on the first token ([CLS]) of a masked LM
or the last real token of a causal LM, trained with the same loop, data and budget as prompt-based tuning.

It offers the scoring interface the trainer uses (``encode``, ``collate``, ``class_log_scores``,
``predict_log_scores``, ``lm``), so both methods run through one ``Trainer``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from prompts.library import Task
from prompts.tokenization import ModelKind

from .data import Example
from .model import ScoringBatch, score_in_length_order
from .precision import compute

# The new head's learning rate: it starts from noise, where the body starts from pre-training, so it
# trains at its own rate (the body's stays the backend's). Chosen on CLINC150's dev, against the body's
# 1e-5 (docs/many_classes.md, "The comparison", the classification head).
HEAD_LEARNING_RATE = 1e-3


class _Body(nn.Module):
    """The pre-trained body and the new head: the module whose parameters train."""

    def __init__(self, lm: nn.Module, num_labels: int, dropout: float):
        super().__init__()
        self.body = lm.base_model
        self.config = lm.config
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(lm.config.hidden_size, num_labels)
        nn.init.normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)

    def forward(self, input_ids, attention_mask, positions) -> torch.Tensor:
        with compute(self):  # the new head is float32 on a bf16 body until training ends
            hidden = self.body(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            picked = hidden[torch.arange(hidden.shape[0], device=hidden.device), positions]
            logits = self.head(self.dropout(picked))
        return logits.float().log_softmax(-1)


class FineTuneClassifier(nn.Module):
    """Plain fine-tuning: label = softmax(W h + b) with h the [CLS] or last-token hidden state."""

    def __init__(
        self,
        lm: nn.Module,
        tokenizer,
        task: Task,
        *,
        kind: ModelKind,
        max_length: int = 128,
        dropout: float = 0.1,
        head_learning_rate: float = HEAD_LEARNING_RATE,
    ):
        super().__init__()
        self.lm = _Body(lm, len(task.labels), dropout)
        self.tokenizer, self.task, self.kind, self.max_length = tokenizer, task, kind, max_length
        pad = tokenizer.pad_token_id
        self.pad_token_id = pad if pad is not None else (tokenizer.eos_token_id or 0)
        self.calibration = None  # the trainer resets it; a head has nothing to calibrate
        self.head_learning_rate = head_learning_rate

    @property
    def labels(self) -> list[str]:
        return list(self.task.labels)

    def head_parameters(self) -> list[nn.Parameter]:
        """The new head's parameters: the trainer gives them ``head_learning_rate``."""
        return list(getattr(self.lm, "module", self.lm).head.parameters())

    @property
    def device(self) -> torch.device:
        return next(getattr(self.lm, "module", self.lm).parameters()).device

    def encode(self, examples: Sequence[Example], demonstrations=None) -> list[list[int]]:
        fields = self.task.fields
        texts = [[e.fields[f] for f in fields] for e in examples]
        if len(fields) == 2:
            encoded = self.tokenizer(
                [t[0] for t in texts],
                [t[1] for t in texts],
                truncation="longest_first",
                max_length=self.max_length,
                split_special_tokens=True,  # user text is text, never control tokens (prompts.tokenization)
            )
        else:
            encoded = self.tokenizer(
                [" ".join(t) for t in texts],
                truncation=True,
                max_length=self.max_length,
                split_special_tokens=True,
            )
        ids = [list(row) for row in encoded["input_ids"]]
        if self.kind == "causal" and self.tokenizer.bos_token_id is not None:
            ids = [
                row if row[:1] == [self.tokenizer.bos_token_id] else [self.tokenizer.bos_token_id, *row]
                for row in ids
            ]
        return ids

    def collate(self, encodings: Sequence[list[int]]) -> ScoringBatch:
        width = max(len(r) for r in encodings)
        ids = torch.full((len(encodings), width), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(encodings), width), dtype=torch.long)
        for i, row in enumerate(encodings):
            ids[i, : len(row)] = torch.tensor(row)
            mask[i, : len(row)] = 1
        position = torch.zeros(len(encodings), dtype=torch.long) if self.kind == "masked" else mask.sum(1) - 1
        return ScoringBatch(ids, mask, len(encodings), positions=position)

    def class_log_scores(self, batch: ScoringBatch, calibrate: bool = True) -> torch.Tensor:
        return self.lm(
            input_ids=batch.input_ids, attention_mask=batch.attention_mask, positions=batch.positions
        )

    def row_length(self, encoding: list[int]) -> int:
        return len(encoding)

    def predict_log_scores(
        self,
        examples: Sequence[Example],
        batch_size: int = 16,
        progress: bool | str = False,
        calibrate: bool = True,
        demonstrations=None,
        seed: int = 0,
    ) -> np.ndarray:
        """Class log-probabilities (N, C); ``demonstrations`` and ``seed`` exist for interface parity."""
        return score_in_length_order(self, self.encode(examples), batch_size, progress)
