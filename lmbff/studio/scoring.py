"""Scoring for the studio: in small batches, one batch at a time on the one model, each request
abandoned as soon as a newer edit from the same page supersedes it.

Why by hand: the point is latency while typing on 2 CPU cores. A request is scored batch by batch, the
model lock is taken per batch (so a preview of the newest edit waits for at most one batch of a dev
sample being scored) and between batches the request checks that it is still the newest of its page.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import anyio
import numpy as np

from prompts.library import Task

from ..data import Example, gold_text
from ..evaluate import apply_calibration, prediction_texts, score_examples
from ..model import PromptModel

BATCH = 8


class Superseded(Exception):
    """A newer edit from the same page made this request's answer useless."""


@dataclass
class Ticket:
    revisions: Revisions
    key: tuple[str, str]
    revision: int

    def check(self) -> None:
        if self.revisions.latest(self.key) != self.revision:
            raise Superseded()


@dataclass
class Revisions:
    """The newest revision each page (client id) has sent on each channel (preview A, evaluate, ...)."""

    _latest: dict[tuple[str, str], int] = field(default_factory=dict)

    def claim(self, client: str, channel: str, revision: int) -> Ticket:
        """Register a request; one older than a request already seen is superseded at once."""
        key = (client, channel)
        if revision < self._latest.get(key, -1):
            raise Superseded()
        if len(self._latest) > 10_000:  # pages come and go; forget them rather than grow forever
            self._latest.clear()
        self._latest[key] = revision
        return Ticket(self, key, revision)

    def latest(self, key: tuple[str, str]) -> int | None:
        return self._latest.get(key)


class ModelLock:
    """One model, one batch at a time: torch already uses every core for a batch."""

    def __init__(self):
        self._lock = anyio.Lock()

    async def run(self, function, *args, ticket: Ticket | None = None):
        """Run ``function(*args)`` in a worker thread once the model is free; a request superseded
        while it waited for the lock is dropped then, before it costs a batch."""
        async with self._lock:
            if ticket is not None:
                ticket.check()
            return await anyio.to_thread.run_sync(function, *args)


class BatchScoring:
    """Raw (uncalibrated) class log-scores of examples, computed batch by batch: iterate
    :meth:`batches` for progress (examples done), then read :attr:`scores`. Raises
    :class:`Superseded` between batches."""

    def __init__(self, scorer: PromptModel, examples: Sequence[Example], lock: ModelLock, ticket: Ticket):
        self.scorer, self.examples, self.lock, self.ticket = scorer, list(examples), lock, ticket
        self.scores = np.zeros((0, len(scorer.labels)), np.float32)

    def _score(self, chunk: list[Example]) -> np.ndarray:
        return self.scorer.predict_log_scores(chunk, batch_size=BATCH, calibrate=False)

    async def batches(self) -> AsyncIterator[int]:
        parts = [self.scores]
        for start in range(0, len(self.examples), BATCH):
            self.ticket.check()
            chunk = self.examples[start : start + BATCH]
            parts.append(await self.lock.run(self._score, chunk, ticket=self.ticket))
            yield min(start + BATCH, len(self.examples))
        self.ticket.check()
        self.scores = np.concatenate(parts)


async def log_scores(
    scorer: PromptModel, examples: Sequence[Example], lock: ModelLock, ticket: Ticket
) -> np.ndarray:
    """:class:`BatchScoring` without progress."""
    run = BatchScoring(scorer, examples, lock, ticket)
    async for _ in run.batches():
        pass
    return run.scores


async def content_free(scorer: PromptModel, lock: ModelLock) -> np.ndarray:
    """Contextual calibration's content-free label probabilities for this template."""
    probs = await lock.run(scorer.calibrate)
    scorer.calibration = None  # raw scores stay raw; calibration is applied post hoc
    return probs


def label_probabilities(labels: Sequence[str], scores: np.ndarray) -> list[dict[str, float]]:
    probs = np.exp(scores)
    return [{label: float(p) for label, p in zip(labels, row, strict=True)} for row in probs]


def predictions(task: Task, scores: np.ndarray) -> list[str]:
    """Each row's predicted label as the page shows it (:func:`lmbff.evaluate.prediction_texts`)."""
    return prediction_texts(task, scores)


def correct(task: Task, example: Example, predicted: str) -> bool | None:
    """Right or wrong as the page marks it (a regression example by its pole, a multi-label example by
    its whole set of labels); None without a label."""
    if example.label is None:
        return None
    if task.multi_label:
        return gold_text(example.label) == predicted
    return task.group_label(example.label) == predicted


def sample_metrics(task: Task, examples: Sequence[Example], scores: np.ndarray, cf: np.ndarray) -> dict:
    """The task's metric and accuracy, raw and calibrated, on the labelled examples of a sample."""
    labelled = [i for i, e in enumerate(examples) if e.label is not None]
    if not labelled:
        return {"labelled": 0}
    chosen = [examples[i] for i in labelled]
    raw = score_examples(task, chosen, scores[labelled], "zero-shot")
    calibrated = score_examples(task, chosen, apply_calibration(scores[labelled], cf), "calibrated")
    return {
        "labelled": len(labelled),
        "metric": task.metric,
        "raw": raw.metrics,
        "calibrated": calibrated.metrics,
        "content_free": [float(p) for p in cf],
    }
