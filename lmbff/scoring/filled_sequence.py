"""``sequence``: a causal LM whose template has text after the slot (TREC's ``{{ mask }}: {{ text_a }}``)
scores the filled sequence, log P(word tokens + following text | text before the slot)."""

from __future__ import annotations

from .base import Reads, ScoringMode, register_mode


@register_mode
class FilledSequence(ScoringMode):
    name = "sequence"
    kind = "causal"
    single_position = False

    def rows(self, pm, enc) -> list[tuple[list[int], Reads]]:
        prefix, rows = enc.prefix_ids, []
        for w, word in enumerate(pm.words.word_ids):
            continuation = list(word) + self.after_word(enc)
            rows.append(
                (prefix + continuation, [(len(prefix) - 1 + i, tok, w) for i, tok in enumerate(continuation)])
            )
        return rows

    def after_word(self, enc) -> list[int]:
        return list(enc.suffix_ids)
