"""The studio's one model: loaded once per server, in a background thread, so the page opens at once
and shows the loading stage (the tokenizer comes first: rendering and lint need only it)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..pretrained import LoadedModel, load_model, load_tokenizer


class ModelNotReady(RuntimeError):
    """Scoring was asked for before the model finished loading (or after it failed to load)."""


@dataclass
class ModelHolder:
    """The model, its tokenizer and where loading stands."""

    name: str
    kind: str | None = None
    state: str = "waiting"  # waiting, loading, ready, failed
    stage: str = ""
    error: str | None = None
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    tokenizer: object | None = None
    loaded: LoadedModel | None = None
    _ready: threading.Event = field(default_factory=threading.Event)

    @classmethod
    def preloaded(cls, loaded: LoadedModel) -> ModelHolder:
        holder = cls(loaded.name, loaded.kind)
        holder._finish(loaded)
        return holder

    def start(self, loader: Callable[..., LoadedModel] = load_model) -> threading.Thread:
        """Load in a daemon thread (a server stopped mid-load does not wait for it)."""
        thread = threading.Thread(target=self._load, args=(loader,), name="lmbff-studio-model", daemon=True)
        self.state, self.started = "loading", time.monotonic()
        thread.start()
        return thread

    def _load(self, loader: Callable[..., LoadedModel]) -> None:
        try:
            self.stage = "reading the tokenizer"
            self.tokenizer, self.kind = load_tokenizer(self.name, self.kind)
            self.stage = "loading the weights"
            self._finish(loader(self.name, kind=self.kind))
        except Exception as exc:  # shown in the page; the server keeps serving files and lint
            self.state, self.error, self.finished = "failed", f"{type(exc).__name__}: {exc}", time.monotonic()
            self._ready.set()

    def _finish(self, loaded: LoadedModel) -> None:
        self.loaded, self.tokenizer, self.kind = loaded, loaded.tokenizer, loaded.kind
        self.state, self.stage, self.finished = "ready", "ready", time.monotonic()
        self._ready.set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._ready.wait(timeout)

    def require(self) -> LoadedModel:
        if self.loaded is None:
            raise ModelNotReady(
                f"the model failed to load: {self.error}"
                if self.state == "failed"
                else "the model is loading"
            )
        return self.loaded

    def status(self) -> dict:
        end = self.finished if self.finished is not None else time.monotonic()
        return {
            "model": self.name,
            "kind": self.kind,
            "state": self.state,
            "stage": self.stage,
            "error": self.error,
            "seconds": round(end - self.started, 1),
            "tokenizer_ready": self.tokenizer is not None,
        }
