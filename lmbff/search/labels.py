"""``lmbff search-labels``: LM-BFF's automatic label words on a k-shot split, end to end.

One forward pass per training (and dev) example gives the full-vocabulary log-probabilities at the
slot; the ranking arithmetic is :mod:`prompts.label_search`. Optionally the best assignments are
re-ranked by dev accuracy after a short prompt-based fine-tuning each (LM-BFF), restoring the model's
weights between candidates.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch

from prompts.library import Task
from prompts.verbalizer import Verbalizer

from ..config import LabelSearchConfig
from ..data import Example
from ..errors import ConfigError
from ..model import PromptModel
from .label_ranking import (
    Assignment,
    WordFilter,
    class_word_scores,
    rank_assignments,
    top_candidates,
)


@dataclass
class RankedAssignment:
    words: dict[str, str]
    train_accuracy: float
    dev_accuracy: float | None = None
    finetuned_dev_accuracy: float | None = None


@dataclass
class LabelSearchResult:
    task: str
    template: str
    criterion: str
    ranked: list[RankedAssignment]
    candidates_per_class: dict[str, list[str]]
    seconds: float

    @property
    def best(self) -> RankedAssignment:
        return self.ranked[0]

    def to_dict(self) -> dict:
        return asdict(self)


def _label_indices(task: Task, examples: Sequence[Example]) -> np.ndarray:
    return np.array([task.labels.index(str(e.label)) for e in examples])


def _accuracy(log_probs: np.ndarray, gold: np.ndarray, token_ids: Sequence[int]) -> float:
    return float((log_probs[:, list(token_ids)].argmax(axis=1) == gold).mean())


def search_label_words(
    scorer: PromptModel,
    task: Task,
    train: Sequence[Example],
    dev: Sequence[Example] = (),
    config: LabelSearchConfig | None = None,
    rerank_with=None,
) -> LabelSearchResult:
    """Rank label-word assignments for ``task`` with ``scorer``'s model and template.

    ``rerank_with(label_words) -> dev accuracy`` is called for the ``rerank_top`` best assignments when
    ``config.rerank == "finetune"`` (the caller tunes and restores the model).

    Raises:
        ValueError: a regression task, a template with text after the slot on a causal LM, or no
            acceptable words.
    """
    config = config or LabelSearchConfig()
    if task.is_regression:
        raise ConfigError(f"{task.name} is a regression task; label-word search needs classes")
    started = time.perf_counter()
    train_lp = scorer.slot_log_probs(train)
    gold = _label_indices(task, train)
    scores = class_word_scores(train_lp, gold, len(task.labels), config.criterion, config.petal_pool)
    accept = WordFilter(
        scorer.adapter,
        scorer.encoder.slot_after_space,
        stop_words=config.stop_words,
        subwords=config.subwords,
    )
    candidates = top_candidates(scores, accept, config.top_k)
    assignments: list[Assignment] = rank_assignments(
        train_lp, gold, candidates, config.candidates, config.beam
    )
    dev_lp, dev_gold = (scorer.slot_log_probs(dev), _label_indices(task, dev)) if dev else (None, None)
    ranked = [
        RankedAssignment(
            a.label_words(task.labels),
            a.train_accuracy,
            _accuracy(dev_lp, dev_gold, a.token_ids) if dev_lp is not None else None,
        )
        for a in assignments
    ]
    if config.rerank == "finetune":
        if rerank_with is None or not dev:
            raise ConfigError("re-ranking by fine-tuning needs dev examples and a tuning function")
        head = ranked[: config.rerank_top]
        for r in head:
            r.finetuned_dev_accuracy = rerank_with(r.words)
        head.sort(key=lambda r: -(r.finetuned_dev_accuracy or 0.0))
        ranked = head + ranked[config.rerank_top :]
    return LabelSearchResult(
        task.name,
        scorer.template.name,
        config.criterion,
        ranked,
        {label: [w for _, w in words] for label, words in zip(task.labels, candidates, strict=True)},
        time.perf_counter() - started,
    )


def finetune_reranker(scorer: PromptModel, task: Task, train, dev, tuning, args):
    """A ``rerank_with`` for :func:`search_label_words`: tune ``scorer`` with the candidate label words,
    return its dev accuracy, and restore the model's weights and verbalizer afterwards."""
    from ..evaluate import score_examples
    from ..train import Trainer
    from ..tuning import detach

    def rerank(label_words: dict[str, str]) -> float:
        original_verbalizer, original_words = scorer.verbalizer, scorer.words
        snapshot = {n: t.detach().clone() for n, t in scorer.base_lm.state_dict().items()}
        try:
            scorer.verbalizer = Verbalizer(label_words, task.labels)
            scorer.words = scorer.verbalizer.tokenize(scorer.adapter, scorer.encoder.slot_after_space)
            Trainer(scorer, task, tuning, args, train, dev).train(progress=False)
            return score_examples(task, dev, scorer.predict_log_scores(dev), "dev").score
        finally:
            detach(scorer.base_lm)
            with torch.no_grad():
                scorer.base_lm.load_state_dict(snapshot)
            for p in scorer.base_lm.parameters():
                p.requires_grad_(False)
            scorer.verbalizer, scorer.words = original_verbalizer, original_words

    return rerank
