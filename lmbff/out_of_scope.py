"""Abstaining: "none of these classes" when no class fits (out-of-scope queries, CLINC150).

A classifier abstains when its confidence (the largest class probability, after calibration where the
classifier calibrates; or any score whose largest entry says how well the best class fits, such as a
prototype's cosine similarity) is below a threshold chosen on dev rows that hold both in-scope and
out-of-scope examples. The threshold maximises the mean of the in-scope accuracy (an in-scope row the
classifier abstains on counts as wrong) and the out-of-scope recall, so neither side is bought with the
other; ties go to the lower threshold (abstain less). Larson et al. (EMNLP 2019) found out-of-scope
recall low for every classifier they tried with a confidence threshold, even at high in-scope accuracy:
both numbers are reported, never one alone.

Written by hand: scikit-learn's threshold tuning (``TunedThresholdClassifierCV``) is binary; this is a
reject option over many classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .errors import InputError

OUT_OF_SCOPE = -1  # the class index of an abstention


@dataclass(frozen=True)
class AbstainRule:
    """Abstain below ``threshold`` of the largest entry of a score: ``probability`` (the class
    probabilities) or ``similarity`` (a prototype scorer's cosine similarities). ``dev_value`` is the
    balanced dev score it was chosen by."""

    threshold: float
    score: str = "probability"
    dev_value: float = 0.0

    def apply(self, probabilities: np.ndarray) -> np.ndarray:
        """Class indices (N,), ``OUT_OF_SCOPE`` where the classifier abstains."""
        probabilities = np.asarray(probabilities, dtype=np.float64)
        chosen = probabilities.argmax(axis=1)
        return np.where(probabilities.max(axis=1) < self.threshold, OUT_OF_SCOPE, chosen)

    def decide(self, probabilities: np.ndarray, similarities=None) -> np.ndarray:
        """Class indices (N,): the most probable class, or ``OUT_OF_SCOPE`` where the rule's score
        (``similarities`` for a similarity rule: an array, or a function that computes it) is below
        the threshold."""
        confidence = probabilities
        if self.score == "similarity":
            confidence = similarities() if callable(similarities) else similarities
        chosen = np.asarray(probabilities).argmax(axis=1)
        return np.where(self.apply(confidence) < 0, OUT_OF_SCOPE, chosen)

    @classmethod
    def from_dict(cls, data: dict) -> AbstainRule:
        """From its saved fields (a state's record may also name the out-of-scope label)."""
        return cls(**{k: v for k, v in data.items() if k != "label"})


def choose_threshold(
    probabilities: np.ndarray, gold: Sequence[int], score: str = "probability"
) -> AbstainRule:
    """The rule that maximises (in-scope accuracy + out-of-scope recall) / 2 on these rows (``gold``:
    class indices, ``OUT_OF_SCOPE`` for out-of-scope rows).

    Raises:
        ValueError: no in-scope or no out-of-scope rows (nothing to balance), or mismatched lengths.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    gold = np.asarray(gold)
    if probabilities.ndim != 2 or len(probabilities) != len(gold):
        raise ValueError(f"{len(gold)} gold labels for probabilities of shape {probabilities.shape}")
    outside = gold == OUT_OF_SCOPE
    if not outside.any() or outside.all():
        raise InputError(
            "choosing an out-of-scope threshold needs dev rows of both kinds: "
            f"{int(outside.sum())} out-of-scope and {int((~outside).sum())} in-scope given"
        )
    confidence = probabilities.max(axis=1)
    right = probabilities.argmax(axis=1) == gold
    # Every distinct confidence is a candidate (abstain below it), plus "never abstain" (0 for
    # probabilities; the lowest seen for a score that can be negative, such as a cosine similarity).
    candidates = np.concatenate([[min(0.0, float(confidence.min()))], np.unique(confidence)])
    best, best_value = 0.0, -1.0
    for threshold in candidates:
        kept = confidence >= threshold
        in_scope = float((right & kept)[~outside].mean())
        recall = float((~kept)[outside].mean())
        value = (in_scope + recall) / 2
        if value > best_value + 1e-12:
            best, best_value = float(threshold), value
    return AbstainRule(best, score, best_value)


def choose_rule(probabilities: np.ndarray, gold: Sequence[int], similarities=None) -> AbstainRule:
    """:func:`choose_threshold` on the probabilities, or on a prototype scorer's ``similarities``
    (an array, or a function that computes it) where that does better on these rows."""
    rule = choose_threshold(probabilities, gold)
    if similarities is not None:
        # A prototype's cosine keeps how far a query is from every class, which the softmax takes away
        # (measured on CLINC150: docs/many_classes.md).
        values = similarities() if callable(similarities) else similarities
        similar = choose_threshold(values, gold, "similarity")
        rule = similar if similar.dev_value > rule.dev_value else rule
    return rule


def out_of_scope_metrics(predicted: Sequence[int], gold: Sequence[int]) -> dict[str, float]:
    """In-scope accuracy (abstentions on in-scope rows are wrong), out-of-scope recall, precision and
    F1, and the accuracy over all rows with out-of-scope as one more class."""
    predicted, gold = np.asarray(predicted), np.asarray(gold)
    outside, abstained = gold == OUT_OF_SCOPE, predicted == OUT_OF_SCOPE
    metrics = {"accuracy_with_out_of_scope": float((predicted == gold).mean()) if len(gold) else 0.0}
    metrics["in_scope_accuracy"] = float((predicted == gold)[~outside].mean()) if (~outside).any() else 0.0
    recall = float(abstained[outside].mean()) if outside.any() else 0.0
    precision = float(outside[abstained].mean()) if abstained.any() else 0.0
    metrics["out_of_scope_recall"] = recall
    metrics["out_of_scope_precision"] = precision
    metrics["out_of_scope_f1"] = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return metrics
