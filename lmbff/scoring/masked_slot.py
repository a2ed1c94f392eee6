"""``mask``: a masked LM reads a word's tokens at mask tokens in the slot (one mask per token; words of
different lengths get one row each), averaged over the word's tokens so long words are not penalised."""

from __future__ import annotations

import torch

from .base import Reads, ScoringMode, register_mode


@register_mode
class MaskedSlot(ScoringMode):
    name = "mask"
    kind = "masked"
    single_position = True

    def rows(self, pm, enc) -> list[tuple[list[int], Reads]]:
        words, prefix = pm.words.word_ids, enc.prefix_ids
        rows = []
        for length in sorted({len(w) for w in words}):
            ids = prefix + [pm.adapter.mask_token_id] * length + enc.suffix_ids
            reads = [
                (len(prefix) + i, tok, w)
                for w, word in enumerate(words)
                if len(word) == length
                for i, tok in enumerate(word)
            ]
            rows.append((ids, reads))
        return rows

    def slot_row(self, pm, enc) -> tuple[list[int], int]:
        return [*enc.prefix_ids, pm.adapter.mask_token_id, *enc.suffix_ids], len(enc.prefix_ids)

    def combine(self, pm, total, num_examples: int):
        # Independent predictions at several masks: average so long words are not penalised.
        n_words = len(pm.words.word_ids)
        lengths = torch.tensor([len(w) for w in pm.words.word_ids], device=total.device, dtype=total.dtype)
        return total.view(num_examples, n_words) / lengths
