"""Shared-prefix inference for causal modes: the passages of one example differ only from the slot on
(one per label word), so the text before it is run once and its key/value cache is reused."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from prompts.encoding import PromptEncoding

from .features import features_before_output_layer as _features_before_output_layer


def shared_prefix_word_scores(
    pm, encodings: Sequence[PromptEncoding], slot_features: bool = False
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-word scores (B, W) of a causal PromptModel, running the text before the slot once, and with
    ``slot_features`` the features (B, H) at the last token before the slot (what prototypes read)."""
    # Why by hand: the passages of one example differ only from the slot on (one per label word),
    # so the text before it (demonstrations, event prefix, the sentence up to the argument) is run
    # once, left-padded so that every prefix ends at the same position, and its key/value cache is
    # repeated for the words' continuations. Same log-probabilities as the row-per-word path.
    words = pm.words.word_ids
    n_words, device = len(words), pm.device
    lengths = [len(e.prefix_ids) for e in encodings]
    if min(lengths) == 0:  # nothing before the slot to share (no BOS, slot first)
        return pm._scores(pm.collate(encodings).to(device))
    ids, mask = pm._pad([list(e.prefix_ids) for e in encodings], left=True)
    ids, mask = ids.to(device), mask.to(device)
    with _features_before_output_layer(pm.base_lm) as box:
        out = pm.lm(
            input_ids=ids,
            attention_mask=mask,
            position_ids=(mask.cumsum(-1) - 1).clamp_min(0),
            use_cache=True,
        )
    slot = box["features"][:, -1]
    first = pm._output_logits(slot).float().log_softmax(-1)
    continuations = [list(word) + pm.scoring.after_word(e) for e in encodings for word in words]
    rows = torch.arange(len(continuations), device=device)
    targets = torch.tensor([c[0] for c in continuations], device=device)
    total = first.repeat_interleave(n_words, dim=0)[rows, targets]
    fed = [c[:-1] for c in continuations]  # the last token is only predicted
    steps = max(len(f) for f in fed)
    if steps:
        cache = out.past_key_values
        cache.batch_repeat_interleave(n_words)
        next_ids, next_mask = pm._pad(fed)
        start = torch.tensor(lengths, dtype=torch.long).repeat_interleave(n_words)
        positions = start[:, None] + torch.arange(steps)[None, :]
        full_mask = torch.cat([mask.repeat_interleave(n_words, dim=0), next_mask.to(device)], dim=1)
        with _features_before_output_layer(pm.base_lm) as box:
            pm.lm(
                input_ids=next_ids.to(device),
                attention_mask=full_mask,
                position_ids=positions.to(device),
                past_key_values=cache,
                use_cache=True,
            )
        entry_row = [r for r, f in enumerate(fed) for _ in f]
        entry_pos = [j for f in fed for j in range(len(f))]
        entry_target = [continuations[r][j + 1] for r, f in enumerate(fed) for j in range(len(f))]
        picked = box["features"][torch.tensor(entry_row), torch.tensor(entry_pos)]
        as_long = lambda v: torch.tensor(v, dtype=torch.long, device=device)  # noqa: E731
        total = total.index_add(
            0, as_long(entry_row), pm._target_log_probs(picked, as_long(entry_target)).to(total.dtype)
        )
    return total.view(len(encodings), n_words), slot if slot_features else None
