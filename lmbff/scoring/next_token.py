"""``next_token``: a causal LM whose template ends at the slot (or only punctuation follows) reads a
word as the continuation of the text before the slot."""

from __future__ import annotations

from .base import Reads, ScoringMode, register_mode


@register_mode
class NextToken(ScoringMode):
    name = "next_token"
    kind = "causal"
    single_position = True

    def rows(self, pm, enc) -> list[tuple[list[int], Reads]]:
        prefix, rows = enc.prefix_ids, []
        for w, word in enumerate(pm.words.word_ids):
            continuation = list(word) + self.after_word(enc)
            ids = (prefix + continuation)[:-1]  # the last word token is only predicted
            rows.append((ids, [(len(prefix) - 1 + i, tok, w) for i, tok in enumerate(continuation)]))
        return rows

    def slot_row(self, pm, enc) -> tuple[list[int], int]:
        return list(enc.prefix_ids), len(enc.prefix_ids) - 1
