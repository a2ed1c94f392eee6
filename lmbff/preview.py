"""``lmbff templates preview`` and the studio: real examples through a template and a model, as a
person reads them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .data import Example, gold_text
from .model import PromptModel


@dataclass
class RenderedPrompt:
    """An example as the model reads it: the text around the slot after truncation."""

    source: str
    before: str  # rendered text before the slot (after truncation)
    after: str
    gold: str | None
    tokens: int
    truncated: dict[str, int]


@dataclass
class PreviewRow(RenderedPrompt):
    prediction: str = ""
    probabilities: dict[str, float] | None = None


def render(scorer: PromptModel, examples: Sequence[Example]) -> list[RenderedPrompt]:
    """Each example rendered and truncated as it would be scored (the tokenizer only, no model pass)."""
    lead = scorer.encoder.lead
    trail = len(scorer.adapter.trailing_ids)
    rows = []
    for example, enc in zip(examples, scorer.encode(examples), strict=True):
        rows.append(
            RenderedPrompt(
                example.source,
                scorer.tokenizer.decode(enc.prefix_ids[lead:]),
                scorer.tokenizer.decode(enc.suffix_ids[: len(enc.suffix_ids) - trail]),
                gold_text(example.label),
                enc.length(scorer.encoder.slot_length),
                dict(enc.truncated),
            )
        )
    return rows


def preview(scorer: PromptModel, examples: Sequence[Example]) -> list[PreviewRow]:
    """Each example rendered as the model sees it, with the label probabilities and the prediction (a
    multi-label task's labels at probability 0.5 each, as a run without dev rows decides them)."""
    from .evaluate import prediction_texts

    log_scores = scorer.predict_log_scores(examples)
    probabilities = np.exp(log_scores)
    multi = scorer.task is not None and scorer.task.multi_label
    chosen = prediction_texts(scorer.task, log_scores) if multi else None
    rows = []
    for i, (shown, probs) in enumerate(zip(render(scorer, examples), probabilities, strict=True)):
        rows.append(
            PreviewRow(
                **vars(shown),
                prediction=chosen[i] if multi else scorer.labels[int(probs.argmax())],
                probabilities={label: float(p) for label, p in zip(scorer.labels, probs, strict=True)},
            )
        )
    return rows
