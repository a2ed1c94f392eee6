"""The scoring-mode interface and its registry."""

from __future__ import annotations

import string
from typing import ClassVar, Protocol, runtime_checkable

from ..errors import ConfigError

Reads = list[tuple[int, int, int]]  # (position, target token, word index) read from one token row

MODES: dict[str, type[ScoringMode]] = {}


class ScoringMode:
    """How a PromptModel turns an encoded example into token rows and reads each label word's score.

    ``kind`` is the model kind the mode fits. With ``single_position``, a verbalizer of single-token
    words is scored from one position per example (one row, only the label words' output rows):
    :meth:`slot_row` gives that row and position. Otherwise :meth:`rows` gives token rows and what to
    read from each; the token log-probabilities of a word are summed, then :meth:`combine` may
    normalise them (the masked mode averages over a word's tokens)."""

    name: ClassVar[str] = ""
    kind: ClassVar[str] = ""
    single_position: ClassVar[bool] = False

    def rows(self, pm, enc) -> list[tuple[list[int], Reads]]:
        raise NotImplementedError

    def slot_row(self, pm, enc) -> tuple[list[int], int]:
        """(token ids, the position read) of the one-position fast path."""
        raise NotImplementedError

    def after_word(self, enc) -> list[int]:
        """Tokens scored after the word (the text that follows the slot, in ``sequence`` mode)."""
        return []

    def combine(self, pm, total, num_examples: int):
        """Per-word scores (num_examples * words,) from summed token log-probabilities."""
        return total

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def register_mode(cls: type[ScoringMode]) -> type[ScoringMode]:
    """Add a mode to the registry. Raises ValueError for an empty or taken name."""
    if not cls.name or cls.kind not in ("masked", "causal"):
        raise ConfigError(f"{cls.__name__}: a mode needs a name and a kind (masked or causal)")
    if cls.name in MODES and MODES[cls.name] is not cls:
        raise ConfigError(f"scoring mode {cls.name!r} is registered twice")
    MODES[cls.name] = cls
    return cls


def _load_plugins() -> None:
    """Modes of installed packages (entry point group ``lmbff.scoring_modes``, :mod:`lmbff.plugins`)."""
    from ..plugins import SCORING_MODES, load_plugins

    load_plugins(SCORING_MODES, register_mode, lambda cls: MODES.get(cls.name) is cls)


def mode_names() -> list[str]:
    """Every registered scoring mode, those of installed plugins included."""
    _load_plugins()
    return sorted(MODES)


def get_mode(name: str) -> ScoringMode:
    """A new instance of the named mode. Raises ConfigError listing the known ones."""
    if name not in MODES:
        _load_plugins()
    if name not in MODES:
        raise ConfigError(f"unknown scoring mode {name!r}; known: {', '.join(sorted(MODES))}")
    return MODES[name]()


def default_mode(kind: str, template) -> str:
    """``mask`` for masked LMs; for causal LMs ``next_token`` when only punctuation follows the slot,
    else ``sequence``."""
    if kind == "masked":
        return "mask"
    _, after = template.render_parts({name: "x" for name in template.fields})
    trailing_only = after.strip(string.punctuation + string.whitespace) == ""
    return "next_token" if trailing_only else "sequence"


@runtime_checkable
class Scorer(Protocol):
    """What training and inference need of a model that scores labels: a PromptModel (any mode) and the
    classification-head baseline (:class:`lmbff.finetune.FineTuneClassifier`) both provide it."""

    lm: object
    calibration: object

    @property
    def labels(self) -> list[str]: ...

    @property
    def device(self): ...

    def encode(self, examples, demonstrations=None) -> list: ...

    def row_length(self, enc) -> int: ...

    def collate(self, encodings): ...

    def class_log_scores(self, batch, calibrate: bool = True): ...

    def predict_log_scores(self, examples, batch_size: int = 16, progress=False, **kwargs): ...
