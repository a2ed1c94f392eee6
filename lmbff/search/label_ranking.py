"""Automatic label words (LM-BFF, Gao et al. 2021, section 5.1), from the model's log-probabilities at
the slot over the whole vocabulary (one forward pass per training example, computed by the caller).

1. Per class, rank words by a criterion and keep the top ``k`` candidate words:
   ``lmbff``: summed log-probability at the slot over the class's training examples (LM-BFF);
   ``petal``: the likelihood ratio log(mean P(w | x in class) / mean P(w | x not in class)), PETAL's
   criterion (Schick et al. 2020) of words likely for one class relative to the others, among the
   class's ``petal_pool`` most likely words (a ratio alone favours rare words whose probabilities
   are tiny everywhere).
2. Assignments (one distinct word per class) are ranked by zero-shot accuracy on the training
   examples; exhaustively when the product of candidate sets is small, else by beam search over the
   classes (partial assignments scored on the examples of the classes assigned so far).

Candidate words are whole words as they stand in the slot (a word the tokenizer maps back to exactly
that one token), alphabetic, and not English stop words, unless asked otherwise.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from prompts.tokenization import TokenizerAdapter
from prompts.verbalizer import visible_form

from ..errors import ConfigError, InputError

Criterion = Literal["lmbff", "petal"]
_EXHAUSTIVE_LIMIT = 200_000  # assignments scored exhaustively; beyond that, beam search


@dataclass(frozen=True)
class Assignment:
    """One word per class (token ids and words, in label order) and its training accuracy."""

    token_ids: tuple[int, ...]
    words: tuple[str, ...]
    train_accuracy: float

    def label_words(self, labels: Sequence[str]) -> dict[str, str]:
        return dict(zip(labels, self.words, strict=True))


def class_word_scores(
    log_probs: np.ndarray, labels: np.ndarray, num_classes: int, criterion: Criterion, petal_pool: int = 1000
) -> np.ndarray:
    """(classes, vocabulary) scores of every word for every class (-inf: not a candidate)."""
    scores = np.empty((num_classes, log_probs.shape[1]), dtype=np.float64)
    for c in range(num_classes):
        inside = labels == c
        if not inside.any():
            raise InputError(f"class {c} has no training examples")
        if criterion == "lmbff":
            scores[c] = log_probs[inside].sum(axis=0)
        elif criterion == "petal":
            if inside.all():
                raise InputError("the likelihood ratio needs examples of at least two classes")
            likely = _log_mean_exp(log_probs[inside])
            ratio = likely - _log_mean_exp(log_probs[~inside])
            pool = np.argsort(-likely, kind="stable")[:petal_pool]
            scores[c] = -np.inf
            scores[c, pool] = ratio[pool]
        else:
            raise ConfigError(f"unknown criterion {criterion!r}; one of lmbff, petal")
    return scores


def _log_mean_exp(values: np.ndarray) -> np.ndarray:
    top = values.max(axis=0)
    return top + np.log(np.exp(values - top).mean(axis=0))


class WordFilter:
    """Which vocabulary ids are acceptable label words in this slot (cached per id)."""

    def __init__(
        self,
        adapter: TokenizerAdapter,
        after_space: bool,
        *,
        stop_words: bool = False,
        subwords: bool = False,
    ):
        from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

        self.adapter, self.after_space = adapter, after_space
        self.stop_words = set() if stop_words else ENGLISH_STOP_WORDS
        self.subwords = subwords
        self.special = set(adapter.tokenizer.all_special_ids) | {  # and every added control token
            int(i)
            for i, t in (getattr(adapter.tokenizer, "added_tokens_decoder", {}) or {}).items()
            if t.special
        }
        self._cache: dict[int, str | None] = {}

    def word(self, token_id: int) -> str | None:
        """The word this id stands for in the slot, or None when it is not an acceptable label word."""
        if token_id not in self._cache:
            self._cache[token_id] = self._check(token_id)
        return self._cache[token_id]

    def _check(self, token_id: int) -> str | None:
        if token_id in self.special:
            return None
        tokenizer = self.adapter.tokenizer
        word = tokenizer.convert_tokens_to_string([tokenizer.convert_ids_to_tokens(token_id)]).strip()
        word = word.removeprefix("##")  # a WordPiece continuation, converted on its own
        if not word or not word.isalpha() or word.lower() in self.stop_words:
            return None
        if not self.subwords and self.adapter.word_ids(word, self.after_space) != [token_id]:
            return None  # a piece of a word, or a form the slot would tokenize differently
        return word


def top_candidates(scores: np.ndarray, accept: WordFilter, k: int) -> list[list[tuple[int, str]]]:
    """Per class, the ``k`` best-scoring acceptable words as (token id, word)."""
    out = []
    for row in scores:
        chosen: list[tuple[int, str]] = []
        for token_id in np.argsort(-row, kind="stable"):
            if not np.isfinite(row[token_id]):
                break  # the rest are not candidates
            word = accept.word(int(token_id))
            if word is not None:
                chosen.append((int(token_id), word))
                if len(chosen) == k:
                    break
        if not chosen:
            raise ConfigError("no acceptable label word in the vocabulary; allow subwords or stop words")
        out.append(chosen)
    return out


def rank_assignments(
    log_probs: np.ndarray,
    labels: np.ndarray,
    candidates: list[list[tuple[int, str]]],
    n: int,
    beam: int = 1000,
) -> list[Assignment]:
    """The ``n`` best assignments of distinct words by training accuracy (ties keep the order of the
    candidates' own ranking)."""
    sizes = [len(c) for c in candidates]
    if int(np.prod(sizes, dtype=np.float64)) <= _EXHAUSTIVE_LIMIT:
        combos = [tuple(range(s)) for s in sizes]
        partial = [p for p in itertools.product(*combos) if _distinct(p, candidates)]
        scored = _accuracies(log_probs, labels, candidates, partial, len(candidates))
    else:
        scored = [((), 0.0)]
        for c in range(len(candidates)):
            extended = [(*p, i) for p, _ in scored for i in range(sizes[c]) if _distinct((*p, i), candidates)]
            scored = _accuracies(log_probs, labels, candidates, extended, c + 1)[: max(beam, n)]
    return [
        Assignment(
            tuple(candidates[c][i][0] for c, i in enumerate(p)),
            tuple(candidates[c][i][1] for c, i in enumerate(p)),
            accuracy,
        )
        for p, accuracy in scored[:n]
    ]


def _distinct(picks: tuple[int, ...], candidates) -> bool:
    """Words of an assignment that the model and a reader can tell apart: other token ids, and other
    visible forms (``Great`` and ``great`` are two tokens, but the verbalizer check refuses them)."""
    ids = [candidates[c][i][0] for c, i in enumerate(picks)]
    seen = [visible_form(candidates[c][i][1]) for c, i in enumerate(picks)]
    return len(set(ids)) == len(ids) and len(set(seen)) == len(seen)


def _accuracies(log_probs, labels, candidates, picks: list[tuple[int, ...]], classes: int):
    """Accuracy of each (partial) assignment on the examples of its first ``classes`` classes,
    sorted best first (stable: earlier candidates win ties)."""
    if not picks:
        return []
    mask = labels < classes
    lp, gold = log_probs[mask], labels[mask]
    out = []
    chunk = max(1, 2_000_000 // max(1, len(gold) * classes))
    for start in range(0, len(picks), chunk):
        block = np.array(picks[start : start + chunk])  # (P, classes) candidate indices
        ids = np.stack(
            [np.array([cand[0] for cand in candidates[c]])[block[:, c]] for c in range(classes)], 1
        )
        chosen = lp[:, ids]  # (examples, P, classes)
        accuracy = (chosen.argmax(axis=2) == gold[:, None]).mean(axis=0)
        out.extend(zip(map(tuple, block.tolist()), accuracy.tolist(), strict=True))
    order = sorted(range(len(out)), key=lambda i: -out[i][1])
    return [out[i] for i in order]


def verbalizer_yaml(label_words: dict[str, str], template_name: str) -> str:
    """A ready-to-paste ``label_words`` block for a task file's template."""
    import yaml

    return yaml.safe_dump({template_name: {"label_words": label_words}}, sort_keys=False, allow_unicode=True)
