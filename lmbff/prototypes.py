"""Prototype verbalizers: a label is a learned vector in the model's hidden space at the slot.

ProtoVerb (Cui et al., ACL 2022) scores a class by the cosine similarity between the slot's hidden
state and the class's prototype; it needs no label words, and its gains are largest where label words
are poor. Here:

- The slot's feature is the input of the output layer (what the label-word logits are computed from)
  at the slot: the mask of a masked LM, the last token before the slot of a causal LM. One forward pass
  per example, whatever the number of classes.
- A class's logit is ``scale * cos(feature - center, prototype)``, with a learned scale (the inverse
  temperature) and a learned center. The center matters because a causal LM's last hidden states share
  a large common direction: uncentred, every example is close to every class mean.
- Prototypes start from the label words (the mean of the words' output-embedding rows: the direction
  whose dot product with the feature is the word's logit, so the untrained prototypes rank like the
  words' logits) or from the mean feature of each class's training examples (a nearest-class-mean
  classifier before any step).
- ``prototype`` scores by prototypes alone; ``words+prototype`` adds the two class log-probabilities
  (a product of the two experts) and renormalises. The loss is the cross-entropy of those class scores,
  so any backend trains the prototypes together with its own parameters (ProtoVerb's extra
  instance-instance contrastive loss is left out: with k examples per class it adds little beside the
  prototype cross-entropy, and it would need every batch to hold pairs of one class).

Written by hand: neither transformers nor peft has a prototype classifier over a prompt's slot.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import MAX_PROTOTYPE_SCALE, VERBALIZERS, PrototypeConfig, check_verbalizer
from .errors import StateError

__all__ = [
    "PREFIX",
    "VERBALIZERS",
    "PrototypeConfig",
    "PrototypeLayer",
    "check_verbalizer",
]


# Parameter names in a state and a checkpoint: the prototypes belong to the scorer, not the language
# model, so they are named apart from the model's own tensors.
PREFIX = "lmbff_prototypes."


def centred_cosine(features: torch.Tensor, center: torch.Tensor, prototypes: torch.Tensor) -> torch.Tensor:
    """``cos(feature - center, prototype)`` (B, C) of features (B, H) and prototype rows (C, H)."""
    shifted = F.normalize(features.float() - center, dim=-1)
    return shifted @ F.normalize(prototypes, dim=-1).T


def bounded_scale(log_scale: torch.Tensor) -> torch.Tensor:
    """The scale (inverse temperature) a learned ``log_scale`` gives, capped at ``MAX_PROTOTYPE_SCALE``:
    uncapped, a few examples drive it up until every score saturates."""
    return log_scale.clamp(max=math.log(MAX_PROTOTYPE_SCALE)).exp()


def class_means(features: torch.Tensor, center: torch.Tensor, labels: torch.Tensor, classes) -> dict:
    """``{class: unit mean of its rows' unit centred features}`` for each of ``classes`` that has rows
    (the nearest-class-mean prototypes a run and a new phase start from)."""
    shifted = F.normalize(features.float() - center, dim=-1)
    return {
        label: F.normalize(shifted[labels == label].mean(0), dim=-1)
        for label in classes
        if bool((labels == label).any())
    }


class PrototypeLayer(nn.Module):
    """Class logits ``scale * cos(feature - center, prototype)`` (B, C) from slot features (B, H).

    Its tensors stay in float32 whatever the model's precision: they are few, and they are the scores."""

    def __init__(self, num_labels: int, hidden: int, config: PrototypeConfig | None = None):
        super().__init__()
        self.config = config or PrototypeConfig()
        self.prototypes = nn.Parameter(torch.zeros(num_labels, hidden))
        self.center = nn.Parameter(torch.zeros(hidden))
        self.log_scale = nn.Parameter(torch.tensor(math.log(self.config.scale)))
        # A multi-label task's sigmoid prototypes: a learned offset per label, so that each label's own
        # probability sigmoid(scale * cos + bias) can be low for every label at once.
        if self.config.activation == "sigmoid":
            self.bias = nn.Parameter(torch.zeros(num_labels))
        # False until initialised from words or examples (a loaded state is initialised by its tensors)
        self.ready = False

    def cosine(self, features: torch.Tensor) -> torch.Tensor:
        """``cos(feature - center, prototype)`` (B, C): the similarity before the learned scale."""
        return centred_cosine(features, self.center, self.prototypes)

    @property
    def sigmoid(self) -> bool:
        return self.config.activation == "sigmoid"

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        logits = bounded_scale(self.log_scale) * self.cosine(features)
        return logits + self.bias if self.sigmoid else logits

    @torch.no_grad()
    def start_from(self, prototypes: torch.Tensor, center: torch.Tensor, scale: float) -> None:
        self.prototypes.copy_(prototypes.float())
        self.center.copy_(center.float())
        self.log_scale.fill_(math.log(min(max(scale, 1e-3), MAX_PROTOTYPE_SCALE)))
        self.ready = True

    def named_state(self) -> dict[str, torch.Tensor]:
        """The tensors by their state names (``lmbff_prototypes.<name>``)."""
        return {PREFIX + name: p for name, p in self.named_parameters()}

    @torch.no_grad()
    def load_named_state(self, tensors: dict[str, torch.Tensor], where: str = "<state>") -> None:
        """Copy a state's ``lmbff_prototypes.*`` tensors in. Raises ValueError when they do not fit."""
        mine = self.named_state()
        given = {name: t for name, t in tensors.items() if name.startswith(PREFIX)}
        if set(given) != set(mine):
            raise StateError(
                f"{where}: the state's prototype tensors {sorted(given)} are not this scorer's {sorted(mine)}"
            )
        for name, tensor in given.items():
            if tensor.shape != mine[name].shape:
                raise StateError(
                    f"{where}: {name} has shape {tuple(tensor.shape)}, the scorer's {tuple(mine[name].shape)}"
                )
            mine[name].copy_(tensor)
        self.ready = True


def split_prototype_tensors(
    tensors: dict[str, torch.Tensor],
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(the language model's tensors, the prototypes' tensors) of a state."""
    model = {n: t for n, t in tensors.items() if not n.startswith(PREFIX)}
    return model, {n: t for n, t in tensors.items() if n.startswith(PREFIX)}


# Slot features kept per class in a prototype state's example memory (IPT's example prototypes): a few
# per class, as IPT keeps them; LM-BFF's K=16 examples of a class all fit.
MEMORY_PER_CLASS = 16


@torch.no_grad()
def example_memory(scorer, task, examples, per_class: int = MEMORY_PER_CLASS) -> dict[str, torch.Tensor]:
    """The slot features (N, H) float32 of the first ``per_class`` training examples of each class, in
    the examples' order, with their class indices (N,): what :mod:`lmbff.incremental` keeps the old
    classes in place with when classes are added. One forward pass per kept example, on the scorer as
    it is (its trained state in place)."""
    indices = [task.labels.index(task.group_label(example.label)) for example in examples]
    rows = first_per_class(indices, per_class)
    kept = [examples[i] for i in rows]
    features = scorer.slot_features(kept).float().cpu() if kept else torch.zeros(0, 0)
    return {"features": features, "labels": torch.tensor([indices[i] for i in rows], dtype=torch.long)}


def first_per_class(labels, per_class: int) -> list[int]:
    """The positions of the first ``per_class`` rows of each class index in ``labels``, in order: the
    rows an example memory keeps."""
    counts: dict[int, int] = {}
    kept = []
    for i, label in enumerate(int(label) for label in labels):
        if counts.get(label, 0) < per_class:
            counts[label] = counts.get(label, 0) + 1
            kept.append(i)
    return kept
