"""Verbalizers: each label maps to one or more label words; each word may be several tokens.

Every way a verbalizer is built (a task file, CLI flags, the Python API, the studio, label search, a
saved state) goes through :func:`label_word_problems` on the text and :meth:`Verbalizer.tokenize` on
the token ids: one check, in one place. Two labels that the model cannot tell apart (the same word up
to spaces, case or invisible characters, or words that encode to the same token ids) are an error,
never a run that scores every example 1/n and reports the result as an accuracy.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .errors import ConfigError
from .tokenization import TokenizerAdapter

# How a prompt scores its classes: by the label words' probabilities at the slot, by learned prototype
# vectors of the slot's hidden state (lmbff.prototypes), or by both. A task file's template may name one
# (``verbalizer: prototype``); runs and the estimator may override it.
VERBALIZERS = ("words", "prototype", "words+prototype")


@dataclass(frozen=True)
class TokenizedVerbalizer:
    """Label words as token ids for one tokenizer and one slot context.

    ``word_ids[i]`` are the tokens of word ``i``; ``word_label[i]`` the index of its label.
    """

    word_ids: tuple[tuple[int, ...], ...]
    word_label: tuple[int, ...]
    num_labels: int

    @property
    def single_token(self) -> bool:
        return all(len(ids) == 1 for ids in self.word_ids)

    @property
    def max_word_length(self) -> int:
        return max(len(ids) for ids in self.word_ids)


def visible_form(word: str) -> str:
    """What a reader sees of a word: NFKC-normalised, without format characters (zero-width spaces,
    joiners, BOMs, direction marks), stripped of whitespace and case-folded. Two words with the same
    visible form are one word to a reader, whatever the model makes of them."""
    text = unicodedata.normalize("NFKC", word)
    text = "".join(ch for ch in text if unicodedata.category(ch) not in ("Cf", "Cc", "Zl", "Zp"))
    return text.strip().casefold()


def label_word_problems(
    labels: Sequence[str], label_words: Mapping[str, object]
) -> list[tuple[str | None, str]]:
    """(the label a problem is under, or None; the message) for every problem of label words as text:
    words filed under a label the task lacks, a label without words, a word that is not text, a word
    that is empty or invisible, and one word (up to spaces, case and invisible characters) used by two
    labels."""
    problems: list[tuple[str | None, str]] = [
        (str(label), f"{label!r} is not a label of the task {list(labels)}")
        for label in label_words
        if label not in labels
    ]
    owner: dict[str, tuple[str, str]] = {}
    for label in labels:
        value = label_words.get(label)
        group = [value] if isinstance(value, str) else value
        if value is None or not isinstance(group, (list, tuple)) or not group:
            problems.append((None, f"label {label!r} has no label word"))
            continue
        for word in group:
            if not isinstance(word, str):
                problems.append(
                    (
                        label,
                        f"label {label!r} has a label word that is not text: {word!r} "
                        f"({type(word).__name__}); write it in quotes",
                    )
                )
                continue
            key = visible_form(word)
            if not key:
                what = "empty" if not word.strip() else f"invisible ({_codepoints(word)})"
                problems.append((label, f"label {label!r} has an {what} label word: {word!r}"))
                continue
            other = owner.get(key)
            if other is not None and other[0] != label:
                problems.append(
                    (
                        label,
                        f"label words {other[1]!r} (label {other[0]!r}) and {word!r} (label {label!r}) "
                        "are the same word to a reader; the model could not tell the labels apart",
                    )
                )
            owner.setdefault(key, (label, word))
    return problems


def _codepoints(word: str) -> str:
    return " ".join(f"U+{ord(ch):04X}" for ch in word)


class Verbalizer:
    """Label → label words, in the task's label order. Words are scored as written, without their
    surrounding whitespace (the toolkit adds the space the slot needs).

    Raises:
        ValueError: any problem of :func:`label_word_problems`, all of them in one message.
    """

    def __init__(self, label_words: Mapping[str, str | Sequence[str]], labels: Sequence[str] | None = None):
        labels = list(labels) if labels is not None else list(label_words)
        problems = label_word_problems(labels, label_words)
        if problems:
            raise ConfigError("; ".join(message for _, message in problems) + f" (labels: {labels})")
        self.labels: list[str] = labels
        self.words: dict[str, tuple[str, ...]] = {
            label: tuple(w.strip() for w in ((v,) if isinstance(v, str) else v))
            for label in labels
            for v in (label_words[label],)
        }

    def token_problems(self, adapter: TokenizerAdapter, after_space: bool) -> list[tuple[str, str, str]]:
        """(label, word, message) for every word the model cannot score as its text: one unknown to
        the tokenizer, one that is or holds a control token of the model (``<eos>``, ``[SEP]``,
        ``<start_of_turn>``: as text it would be split into pieces, so it would not be the token its
        writer meant), and words of two labels that encode to the same token ids."""
        problems: list[tuple[str, str, str]] = []
        specials = adapter.control_tokens()
        owner: dict[tuple[int, ...], tuple[str, str]] = {}
        for label in self.labels:
            for word in self.words[label]:
                control = [s for s in specials if s in word]
                if control:
                    problems.append(
                        (
                            label,
                            word,
                            f"label word {word!r} (label {label!r}) holds the model's control "
                            f"token {control[0]!r}; label words are text, and control tokens come only from "
                            "the template's structure",
                        )
                    )
                    continue
                ids = tuple(adapter.word_ids(word, after_space))
                if not ids or adapter.is_unknown(list(ids)):
                    problems.append(
                        (
                            label,
                            word,
                            f"label word {word!r} (label {label!r}) is unknown to the tokenizer: "
                            f"{adapter.describe(list(ids))}",
                        )
                    )
                    continue
                other = owner.get(ids)
                if other is not None and other[0] != label:
                    problems.append(
                        (
                            label,
                            word,
                            f"label words {other[1]!r} (label {other[0]!r}) and {word!r} (label "
                            f"{label!r}) encode to the same tokens {adapter.describe(list(ids))}; the model "
                            "could not tell the labels apart",
                        )
                    )
                owner.setdefault(ids, (label, word))
        return problems

    def tokenize(self, adapter: TokenizerAdapter, after_space: bool) -> TokenizedVerbalizer:
        """Token ids of every label word as it stands in the slot.

        Raises:
            ValueError: any problem of :meth:`token_problems`, all of them in one message.
        """
        problems = self.token_problems(adapter, after_space)
        if problems:
            raise ConfigError("; ".join(message for _, _, message in problems))
        word_ids: list[tuple[int, ...]] = []
        word_label: list[int] = []
        for index, label in enumerate(self.labels):
            for word in self.words[label]:
                word_ids.append(tuple(adapter.word_ids(word, after_space)))
                word_label.append(index)
        return TokenizedVerbalizer(tuple(word_ids), tuple(word_label), len(self.labels))

    def to_dict(self) -> dict[str, list[str]]:
        return {label: list(words) for label, words in self.words.items()}

    def __repr__(self) -> str:
        return f"Verbalizer({self.to_dict()})"
