"""``lmbff templates preview``: real examples through a template and a model, as a person reads them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .data import Example
from .model import PromptModel


@dataclass
class PreviewRow:
    source: str
    before: str  # rendered text before the slot (after truncation)
    after: str
    gold: str | None
    prediction: str
    probabilities: dict[str, float]
    tokens: int
    truncated: dict[str, int]


def preview(scorer: PromptModel, examples: Sequence[Example]) -> list[PreviewRow]:
    """Each example rendered as the model sees it, with the label probabilities and the prediction."""
    encodings = scorer.encode(examples)
    probabilities = np.exp(scorer.predict_log_scores(examples))
    rows = []
    for example, enc, probs in zip(examples, encodings, probabilities, strict=True):
        lead = scorer.encoder.lead
        trail = len(scorer.adapter.trailing_ids)
        before = scorer.tokenizer.decode(enc.prefix_ids[lead:])
        after = scorer.tokenizer.decode(enc.suffix_ids[: len(enc.suffix_ids) - trail])
        rows.append(
            PreviewRow(
                example.source,
                before,
                after,
                None if example.label is None else str(example.label),
                scorer.labels[int(probs.argmax())],
                {label: float(p) for label, p in zip(scorer.labels, probs, strict=True)},
                enc.length(scorer.encoder.slot_length),
                dict(enc.truncated),
            )
        )
    return rows
