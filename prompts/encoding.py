"""From an example's fields to token ids around the slot, truncating fields and never the template.

Truncation only ever shortens the example's own fields (per-field limits first, like LM-BFF's
``first_sent_limit``, then the longest field until the prompt fits), re-rendering after each cut, so
the template's words and the slot always survive.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from .template import Template, TemplateError
from .tokenization import TokenizerAdapter, TruncateSide

_MAX_ROUNDS = 32
_COUNT_CHARS = 1_000_000  # a cut field's original token count is exact up to this many characters


@dataclass(frozen=True)
class PromptEncoding:
    """Token ids of a rendered prompt, split at the slot.

    ``prefix_ids`` starts with the model's leading special tokens; ``suffix_ids`` ends with its
    trailing ones (none for causal LMs). ``slot_after_space`` says label words take their
    word-initial form. ``truncated`` maps a field to the number of its tokens that were cut (estimated
    in proportion for a field of over a million characters).
    """

    prefix_ids: list[int]
    suffix_ids: list[int]
    slot_after_space: bool
    truncated: dict[str, int] = field(default_factory=dict)

    def length(self, slot_length: int) -> int:
        return len(self.prefix_ids) + slot_length + len(self.suffix_ids)


class PromptTooLong(TemplateError):
    """The template's own words (with the slot) exceed the length budget, even with empty fields."""


class PromptEncoder:
    """Encodes examples for one template, tokenizer and length budget."""

    def __init__(
        self,
        template: Template,
        adapter: TokenizerAdapter,
        *,
        max_length: int = 128,
        slot_length: int = 1,
        field_limits: Mapping[str, int] | None = None,
        truncate_side: Mapping[str, TruncateSide] | None = None,
    ):
        self.template = template
        self.adapter = adapter
        self.max_length = max_length
        self.slot_length = slot_length
        self.field_limits = dict(field_limits or {})
        self.truncate_side = dict(truncate_side or {})
        # Prompt tuning (Lester et al. 2021): positions right after the leading special tokens whose
        # embeddings the soft prompt replaces; the ids there are placeholders (the pad id).
        self.virtual_tokens = 0
        probe = {name: "x" for name in template.fields}
        before, _ = template.render_parts(probe)
        # Decided once per template so every example's label words share one tokenization.
        self.slot_after_space = before != "" and before[-1].isspace()

    @property
    def lead(self) -> int:
        """Tokens before the rendered text: leading special tokens, then virtual tokens."""
        return len(self.adapter.leading_ids) + self.virtual_tokens

    def _encode_rendered(self, fields: Mapping[str, str]) -> tuple[list[int], list[int]]:
        before, after = self.template.render_parts(fields)
        if self.slot_after_space:
            before = before.rstrip()
        virtual = [self.adapter.pad_token_id] * self.virtual_tokens
        prefix = self.adapter.leading_ids + virtual + self.adapter.encode_piece(before)
        suffix = self.adapter.encode_piece(after) + self.adapter.trailing_ids
        return prefix, suffix

    def encode(
        self,
        fields: Mapping[str, str],
        demonstrations: Sequence[tuple[Mapping[str, str], Sequence[int]]] = (),
    ) -> PromptEncoding:
        """Encode one example's fields, with optional demonstrations.

        ``demonstrations`` are (fields, label-word token ids) pairs: each is the template filled with
        its label word, placed after the query for masked LMs (LM-BFF) and before it for causal LMs
        (in-context order), separated by the model's separator. The query is encoded first within
        ``max_length``; the demonstrations share what is left, each cut in its own fields, and one that
        cannot fit even with empty fields is left out.

        Raises:
            TemplateError: rendering failed (missing field, sandbox violation, no slot).
            PromptTooLong: the template alone does not fit ``max_length``.
        """
        prefix, suffix, truncated = self._fit(fields, self.max_length, self.slot_length)
        if not demonstrations:
            return PromptEncoding(prefix, suffix, self.slot_after_space, truncated)
        separator = self.adapter.separator_ids
        lead = self.lead
        left = self.max_length - len(prefix) - self.slot_length - len(suffix)
        full = [self._demonstration(f, ids, None) for f, ids in demonstrations]
        budgets = share_budget({i: len(ids) + len(separator) for i, ids in enumerate(full)}, left)
        pieces = []
        for i, (demo_fields, word_ids) in enumerate(demonstrations):
            budget = budgets[i] - len(separator)
            ids = full[i] if len(full[i]) <= budget else self._demonstration(demo_fields, word_ids, budget)
            if ids:
                pieces += ids + separator
        if self.adapter.kind == "masked":
            suffix = suffix + pieces
        else:
            prefix = prefix[:lead] + pieces + prefix[lead:]
        assert len(prefix) + self.slot_length + len(suffix) <= self.max_length
        return PromptEncoding(prefix, suffix, self.slot_after_space, truncated)

    def _demonstration(
        self, fields: Mapping[str, str], word_ids: Sequence[int], budget: int | None
    ) -> list[int]:
        """A demonstration's ids (no special tokens), within ``budget`` tokens; [] when it cannot fit."""
        lead, trail = self.lead, len(self.adapter.trailing_ids)
        try:
            prefix, suffix, _ = self._fit(fields, (budget or 10**9) + lead + trail, len(word_ids))
        except PromptTooLong:
            return []
        return prefix[lead:] + list(word_ids) + suffix[: len(suffix) - trail]

    def _fit(
        self, fields: Mapping[str, str], max_length: int, slot_length: int
    ) -> tuple[list[int], list[int], dict[str, int]]:
        """Prefix and suffix ids of the rendered fields, cut (fields only) to fit ``max_length``."""
        values = {name: str(value) for name, value in fields.items()}
        original = {}
        for name in self.template.fields:  # a field longer than the model can take is cut by characters
            if name not in values:  # first, so that it is neither tokenized nor rendered whole
                continue
            keep = min(self.field_limits.get(name, max_length), max_length, self.max_length)
            whole = values[name]
            values[name] = self.adapter.shorten(whole, keep, self.truncate_side.get(name, "end"))
            counted = self.adapter.count(values[name])
            if values[name] != whole:  # its length in tokens: counted up to a million characters, then
                counted = (  # estimated in proportion (what is reported as cut, not what is scored)
                    self.adapter.count(whole)
                    if len(whole) <= _COUNT_CHARS
                    else round(counted * len(whole) / max(len(values[name]), 1))
                )
            original[name] = counted
        for name, limit in self.field_limits.items():
            if name in values and original.get(name, 0) > limit:
                values[name] = self.adapter.cut(values[name], limit, self.truncate_side.get(name, "end"))
        for _ in range(_MAX_ROUNDS):
            prefix, suffix = self._encode_rendered(values)
            excess = len(prefix) + slot_length + len(suffix) - max_length
            if excess <= 0:
                truncated = {
                    name: original[name] - self.adapter.count(values[name])
                    for name in original
                    if values[name] != str(fields[name])
                }
                return prefix, suffix, truncated
            counts = {name: self.adapter.count(values[name]) for name in original}
            if not counts or not any(counts.values()):
                raise PromptTooLong(
                    f"the template's own text and slot take {excess + max_length} tokens with every "
                    f"field empty, over max_length={max_length}; "
                    "raise max_length or shorten the template",
                    template=self.template.name,
                    location=self.template.location,
                )
            budgets = share_budget(counts, sum(counts.values()) - excess)
            for name, keep in budgets.items():
                if keep < counts[name]:
                    values[name] = self.adapter.cut(values[name], keep, self.truncate_side.get(name, "end"))
        raise AssertionError("truncation did not converge")  # each round removes the measured excess


def share_budget(counts: Mapping, budget: int) -> dict:
    """Token budgets per field summing to at most ``budget``: short fields keep everything, long fields
    share the rest equally (so a 10,000-word premise is cut before a 10-word hypothesis)."""
    budget = max(budget, 0)
    remaining = dict(counts)
    budgets: dict[str, int] = {}
    while remaining:
        share = budget // len(remaining)
        fitting = {name: n for name, n in remaining.items() if n <= share}
        if not fitting:
            extra = budget - share * len(remaining)
            for i, name in enumerate(sorted(remaining, key=remaining.get, reverse=True)):
                budgets[name] = share + (1 if i < extra else 0)
            break
        for name, n in fitting.items():
            budgets[name] = n
            budget -= n
            del remaining[name]
    return budgets
