"""Every tokenizer quirk the toolkit depends on, in one place.

- Label words take the word-initial form (BPE's leading space) when a space precedes the slot.
- Masked LMs name their mask ``[MASK]`` or ``<mask>``: we only ever use ``mask_token_id``.
- Causal LMs often have no pad token, and some add no BOS: scoring the first word needs a token before it.
- Some tokenizers (SentencePiece with a dummy prefix) mark every piece as word-initial when it is
  encoded alone; pieces that continue a text are encoded after an anchor and the anchor is removed.
"""

from __future__ import annotations

from typing import Literal

from .errors import ModelError

ModelKind = Literal["masked", "causal"]
TruncateSide = Literal["start", "end"]

_ANCHOR = "\n"


class TokenizerAdapter:
    """Encodes text pieces and label words for one tokenizer and one kind of model.

    Raises:
        ValueError: a masked LM's tokenizer has no mask token, or a causal LM's tokenizer has no
            token that can stand before the first word (no BOS and no EOS).
    """

    def __init__(self, tokenizer, kind: ModelKind):
        if not getattr(tokenizer, "is_fast", False):
            raise ModelError(
                f"{type(tokenizer).__name__} is a slow tokenizer; the toolkit needs a fast (Rust) tokenizer "
                "for character offsets. Load it with AutoTokenizer.from_pretrained(..., use_fast=True)."
            )
        self.tokenizer = tokenizer
        self.kind: ModelKind = kind
        self._control_tokens: list[str] | None = None
        self._adds_dummy_prefix = self._raw("x") == self._raw(" x") and self._raw(" x") != []
        self._anchor_ids = self._raw(_ANCHOR)
        leading, trailing = self._special_tokens()
        if kind == "masked":
            if tokenizer.mask_token_id is None:
                raise ModelError(
                    f"the tokenizer of this masked LM ({type(tokenizer).__name__}) has no mask token"
                )
            self.mask_token_id: int | None = tokenizer.mask_token_id
            self.leading_ids, self.trailing_ids = leading, trailing
        else:
            self.mask_token_id = None
            # A causal LM predicts token t from tokens < t, so something must precede the first word.
            if not leading:
                start = (
                    tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
                )
                if start is None:
                    raise ModelError(
                        "the causal LM's tokenizer has neither a BOS nor an EOS token to start with"
                    )
                leading = [start]
            # Trailing specials (an EOS some tokenizers append) would sit between prompt and label word.
            self.leading_ids, self.trailing_ids = leading, []
        # Between demonstrations: the model's own separator (LM-BFF's *sep+*), or a new line for causal LMs.
        self.separator_ids: list[int] = list(self.trailing_ids) or self.encode_piece("\n")
        pad = tokenizer.pad_token_id
        if pad is None:
            pad = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
        self.pad_token_id: int = pad

    def _raw(self, text: str) -> list[int]:
        # split_special_tokens: text is text. Without it a data row holding "<eos>" or "[SEP]" would be
        # encoded as the model's real control tokens (an end of sequence, a turn marker, a second mask);
        # special tokens come only from the template's structure (leading, trailing, mask ids).
        return list(self.tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"])

    def _offsets(self, text: str) -> list[tuple[int, int]]:
        """Character offsets of the tokens of ``text``, encoded as text (see :meth:`_raw`)."""
        return list(
            self.tokenizer(
                text, add_special_tokens=False, return_offsets_mapping=True, split_special_tokens=True
            )["offset_mapping"]
        )

    def control_tokens(self) -> list[str]:
        """The text of every special token of the tokenizer (BOS, EOS, mask, separators, turn markers),
        longest first."""
        if self._control_tokens is None:
            self._control_tokens = self._find_control_tokens()
        return self._control_tokens

    def _find_control_tokens(self) -> list[str]:
        found = set(getattr(self.tokenizer, "all_special_tokens", []) or [])
        for token in (getattr(self.tokenizer, "added_tokens_decoder", {}) or {}).values():
            if getattr(token, "special", False):
                found.add(str(token.content if hasattr(token, "content") else token))
        return sorted((t for t in found if t), key=lambda t: (-len(t), t))

    def _special_tokens(self) -> tuple[list[int], list[int]]:
        """The ids the tokenizer adds before and after a text, found by encoding a probe."""
        probe = "hello"
        plain = self._raw(probe)
        full = list(self.tokenizer(probe, add_special_tokens=True)["input_ids"])
        for start in range(len(full) - len(plain) + 1):
            if full[start : start + len(plain)] == plain:
                return full[:start], full[start + len(plain) :]
        return [], []

    def encode_piece(self, text: str) -> list[int]:
        """Token ids of a piece of a longer text, as it is tokenized in place (no special tokens)."""
        if not text:
            return []
        if not self._adds_dummy_prefix:
            return self._raw(text)
        ids = self._raw(_ANCHOR + text)
        n = len(self._anchor_ids)
        if ids[:n] == self._anchor_ids:
            return ids[n:]
        return self._raw(text)

    def word_ids(self, word: str, after_space: bool) -> list[int]:
        """Token ids of a label word standing in the slot: word-initial form when a space precedes it."""
        if after_space:
            return self._raw(" " + word) if not self._adds_dummy_prefix else self._raw(word)
        return self.encode_piece(word)

    def count(self, text: str) -> int:
        return len(self._raw(text)) if text else 0

    def cut(self, text: str, keep_tokens: int, side: TruncateSide = "end") -> str:
        """The text shortened to its first (side='end') or last (side='start') ``keep_tokens`` tokens."""
        if keep_tokens <= 0:
            return ""
        offsets = self._offsets(text)
        if len(offsets) <= keep_tokens:
            return text
        if side == "end":
            return text[: offsets[keep_tokens - 1][1]]
        return text[offsets[len(offsets) - keep_tokens][0] :]

    def shorten(self, text: str, keep_tokens: int, side: TruncateSide = "end") -> str:
        """``text`` cut to a little more than ``keep_tokens`` tokens (8 more) from the side it is kept
        on, tokenizing only about as much of it as that takes; short texts are returned whole.

        Why: a field is cut to what the model can take before the template renders it. A 250,000
        character review must be truncated like any other, not tokenized whole nor rendered whole
        (it would pass the render budget and abort the run); the exact cut to the token is made after."""
        margin = keep_tokens + 8
        size = max(64 * margin, 4096)
        while size < len(text):
            piece = text[:size] if side == "end" else text[-size:]
            offsets = self._offsets(piece)
            if len(offsets) > margin:  # the piece's last token may be cut mid-word: keep clear of it
                if side == "end":
                    return piece[: offsets[margin - 1][1]]
                return piece[offsets[len(offsets) - margin][0] :]
            size *= 4
        if len(text) <= 64 * margin:
            return text
        # Long but with few tokens: the tokenizer drops most of it (whitespace, for WordPiece). Keep the
        # span of the kept tokens only: what is dropped around them would be dropped when encoding too.
        offsets = self._offsets(text)
        if not offsets:
            return ""
        kept = offsets[:margin] if side == "end" else offsets[-margin:]
        return text[kept[0][0] : kept[-1][1]]

    def is_unknown(self, ids: list[int]) -> bool:
        unk = self.tokenizer.unk_token_id
        return unk is not None and unk in ids

    def describe(self, ids: list[int]) -> list[str]:
        return list(self.tokenizer.convert_ids_to_tokens(ids))
