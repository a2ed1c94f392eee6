"""Verbalizers: each label maps to one or more label words; each word may be several tokens."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .tokenization import TokenizerAdapter


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


class Verbalizer:
    """Label → label words, in the task's label order.

    Raises:
        ValueError: a label has no words, a word is empty, or a word names a label the task lacks.
    """

    def __init__(self, label_words: Mapping[str, str | Sequence[str]], labels: Sequence[str] | None = None):
        labels = list(labels) if labels is not None else list(label_words)
        unknown = [label for label in label_words if label not in labels]
        if unknown:
            raise ValueError(f"label words given for unknown labels {unknown}; the labels are {labels}")
        words: dict[str, tuple[str, ...]] = {}
        for label in labels:
            value = label_words.get(label)
            if value is None:
                raise ValueError(f"label {label!r} has no label word")
            group = (value,) if isinstance(value, str) else tuple(value)
            if not group or any(not isinstance(w, str) or not w.strip() for w in group):
                raise ValueError(f"label {label!r} has an empty label word: {list(group)}")
            words[label] = tuple(w.strip() for w in group)
        self.labels: list[str] = labels
        self.words: dict[str, tuple[str, ...]] = words

    def tokenize(self, adapter: TokenizerAdapter, after_space: bool) -> TokenizedVerbalizer:
        """Token ids of every label word as it stands in the slot.

        Raises:
            ValueError: a word tokenizes to nothing or to the unknown token.
        """
        word_ids: list[tuple[int, ...]] = []
        word_label: list[int] = []
        for index, label in enumerate(self.labels):
            for word in self.words[label]:
                ids = adapter.word_ids(word, after_space)
                if not ids or adapter.is_unknown(ids):
                    raise ValueError(f"label word {word!r} (label {label!r}) is unknown to the tokenizer")
                word_ids.append(tuple(ids))
                word_label.append(index)
        return TokenizedVerbalizer(tuple(word_ids), tuple(word_label), len(self.labels))

    def to_dict(self) -> dict[str, list[str]]:
        return {label: list(words) for label, words in self.words.items()}

    def __repr__(self) -> str:
        return f"Verbalizer({self.to_dict()})"
