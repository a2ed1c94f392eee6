"""PromptModel: tokenizer + language model + template + verbalizer → per-class log-scores.

How a class is scored:

- masked LM, ``mode="mask"``: the slot holds mask tokens; a word is scored by its tokens' logits at
  the masks (one mask per token; words of different lengths get one row each).
- causal LM, ``mode="next_token"`` (the slot ends the prompt, or only punctuation follows it): the
  prompt stops at the slot and a word is scored as its continuation.
- causal LM, ``mode="sequence"`` (text follows the slot, as in TREC's ``{{ mask }}: {{ text_a }}``):
  the filled sequence is scored, i.e. log P(word tokens + following text | text before the slot).

When every label word is one token and one row serves all of them (``mask`` and ``next_token``), only
the label-word rows of the output layer are computed, at the one scored position per example.
Otherwise full-vocabulary log-probabilities are computed at the scored positions only, never at every
position. Several words per label are averaged in probability; the class scores are log-softmaxed
over the labels, optionally after contextual calibration (Zhao et al. 2021).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint
from tqdm.auto import tqdm

from prompts.encoding import PromptEncoder, PromptEncoding, PromptTooLong
from prompts.library import Task
from prompts.template import Template, TemplateError
from prompts.tokenization import ModelKind, TokenizerAdapter
from prompts.verbalizer import Verbalizer

from .data import Example, render_problem, row_error
from .demonstrations import Demonstrations
from .errors import ConfigError, ModelError
from .precision import compute, full_precision
from .prototypes import PrototypeConfig, PrototypeLayer, check_verbalizer, class_means
from .scoring import default_mode, get_mode
from .scoring.calibration import CONTENT_FREE, calibrate_log_scores
from .scoring.features import features_before_output_layer as _features_before_output_layer
from .scoring.shared_prefix import shared_prefix_word_scores

ModeName = str  # a registered scoring mode: "mask", "next_token", "sequence" (lmbff.scoring)
# The batch size runs score dev and test with (predict_log_scores' default). Batching is part of
# bit-identical scores, so predict and the estimator score saved states with it too.
SCORING_BATCH_SIZE = 16
# Float32 logits per full-vocabulary log-softmax chunk. The product with the output layer reads the
# whole embedding matrix once per chunk (671 MB for Gemma 3's 262,144 x 640), so small chunks are
# bound by memory bandwidth: on 2 EPYC cores a row cost 9.4 ms in chunks of 64 rows and 4.4 ms in
# chunks of 512 (benchmarks/output_layer_chunks.py). 512 MiB gives Gemma 3 chunks of 512 rows.
_LOGITS_CHUNK_BYTES = 512 * 2**20


@dataclass
class ScoringBatch:
    """Token rows to run, and what to read from them.

    Fast path: ``positions[r]`` is the one scored position of row ``r`` (= example ``r``).
    General path: entry ``e`` reads the log-probability of ``entry_target[e]`` at
    ``(entry_row[e], entry_pos[e])`` and adds it to word ``entry_word[e]`` (example * words + word).
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    num_examples: int
    positions: torch.Tensor | None = None
    entry_row: torch.Tensor | None = None
    entry_pos: torch.Tensor | None = None
    entry_target: torch.Tensor | None = None
    entry_word: torch.Tensor | None = None
    # General path with prototypes: the one-row-per-example batch their slot features are read from
    slot: ScoringBatch | None = None

    def to(self, device) -> ScoringBatch:
        moved = {
            k: (v.to(device) if isinstance(v, (torch.Tensor, ScoringBatch)) else v)
            for k, v in self.__dict__.items()
        }
        return ScoringBatch(**moved)


def logits_chunk_rows(vocab_size: int) -> int:
    """Positions per full-vocabulary log-softmax: as many as fit in ``_LOGITS_CHUNK_BYTES`` of float32
    logits, at least one."""
    return max(1, _LOGITS_CHUNK_BYTES // (4 * vocab_size))


class PromptModel(nn.Module):
    """A language model read through a cloze prompt.

    Raises:
        ValueError: a label word is unknown to the tokenizer, or ``mode`` does not fit the model kind.
    """

    def __init__(
        self,
        lm: nn.Module,
        tokenizer,
        template: Template,
        verbalizer: Verbalizer,
        *,
        kind: ModelKind,
        max_length: int = 128,
        field_limits: dict[str, int] | None = None,
        truncate_side: dict[str, str] | None = None,
        mode: ModeName | None = None,
    ):
        super().__init__()
        self.lm = lm
        self.tokenizer = tokenizer
        self.kind: ModelKind = kind
        self.template = template
        self.verbalizer = verbalizer
        self.adapter = TokenizerAdapter(tokenizer, kind)
        self.encoder = PromptEncoder(
            template,
            self.adapter,
            max_length=max_length,
            field_limits=field_limits,
            truncate_side=truncate_side,
        )
        self.words = verbalizer.tokenize(self.adapter, self.encoder.slot_after_space)
        self.encoder.slot_length = self.words.max_word_length
        self.scoring = get_mode(mode or default_mode(kind, template))
        if self.scoring.kind != kind:
            raise ModelError(f"scoring mode {self.scoring.name!r} does not fit a {kind} LM")
        self.register_buffer("calibration", None, persistent=False)
        self.task: Task | None = None  # set by for_task; tells a regression demonstration's pole
        # How classes are scored: by their label words, by prototypes (lmbff.prototypes), or both.
        self.verbalizer_kind = "words"
        self.prototypes: PrototypeLayer | None = None

    @classmethod
    def for_task(
        cls, lm: nn.Module, tokenizer, task: Task, prompt, *, kind: ModelKind, **kwargs
    ) -> PromptModel:
        """A PromptModel for a task file's prompt (a ``PromptSpec``), with the task's truncation rules."""
        kwargs.setdefault("field_limits", task.field_limits)
        kwargs.setdefault("truncate_side", task.truncate_side)
        model = cls(lm, tokenizer, prompt.template, prompt.verbalizer(task), kind=kind, **kwargs)
        model.task = task
        return model

    @property
    def mode(self) -> ModeName:
        """The scoring mode's name (see :mod:`lmbff.scoring`)."""
        return self.scoring.name

    @property
    def labels(self) -> list[str]:
        return self.verbalizer.labels

    @property
    def fast_path(self) -> bool:
        """One row per example, and only label-word rows of the output layer (none for prototypes)."""
        if self.verbalizer_kind == "prototype":
            return True
        return self.words.single_token and self.scoring.single_position

    # ---- prototypes -----------------------------------------------------------------------------
    def use_prototypes(self, verbalizer: str, config: PrototypeConfig | None = None) -> None:
        """Score classes by ``verbalizer``: ``words``, ``prototype`` or ``words+prototype``
        (:mod:`lmbff.prototypes`). The prototypes start untrained: :meth:`init_prototypes` (the trainer
        calls it) or a state's tensors set them.

        Raises:
            ValueError: an unknown verbalizer, or a causal LM's template whose slot comes before every
                field (the slot's position would see none of the text).
        """
        check_verbalizer(verbalizer)
        if config is not None and self.task is not None:
            config.check_activation(verbalizer, self.task.multi_label, self.task.name)
        if verbalizer == "words":
            self.verbalizer_kind, self.prototypes = "words", None
            return
        if self.kind == "causal":
            before = [self.template.render_parts(dict.fromkeys(self.template.fields, t))[0] for t in "AB"]
            if before[0] == before[1]:
                raise ConfigError(
                    f"template {self.template.name!r} puts its slot before every field; a causal LM's "
                    "prototype reads the position before the slot, which would see none of the text. "
                    'Put the slot after the text (e.g. "{{ text_a }} It was {{ mask }}.")'
                )
        hidden = self.base_lm.get_output_embeddings().weight.shape[1]
        layer = PrototypeLayer(len(self.labels), hidden, config)
        self.prototypes = layer.to(self.device)
        self.verbalizer_kind = verbalizer

    def _slot_row(self, enc: PromptEncoding) -> tuple[list[int], int]:
        """(token ids, position) of the one-row view of an example: the mask of a masked LM, the last
        token before the slot of a causal LM (what the fast path and prototypes read)."""
        if self.scoring.single_position:
            return self.scoring.slot_row(self, enc)
        return list(enc.prefix_ids), len(enc.prefix_ids) - 1

    @torch.no_grad()
    def slot_features(
        self, examples: Sequence[Example], batch_size: int = SCORING_BATCH_SIZE
    ) -> torch.Tensor:
        """The slot's features (N, H), float32, in the examples' order (one forward pass each)."""
        was_training = self.lm.training
        self.lm.eval()
        encodings = self.encode(examples)
        out = [
            self._slot_features(self._slot_batch(encodings[start : start + batch_size]).to(self.device))
            for start in range(0, len(encodings), batch_size)
        ]
        self.lm.train(was_training)
        return torch.cat(out).float()

    @torch.no_grad()
    def prototype_similarities(
        self, examples: Sequence[Example], batch_size: int = SCORING_BATCH_SIZE
    ) -> np.ndarray:
        """Cosine similarity (N, C) of each example's centred slot feature with each prototype: the
        prototypes' own confidence, before the learned scale and the softmax take its level away (an
        out-of-scope query can be far from every prototype and still nearer one than the rest)."""
        if self.prototypes is None:
            raise ConfigError("this scorer has no prototypes (verbalizer 'words')")
        return self.prototypes.cosine(self.slot_features(examples, batch_size)).cpu().numpy()

    @torch.no_grad()
    def init_prototypes(self, examples: Sequence[Example], label_index: Sequence[int]) -> str:
        """Start the prototypes from the label words or from each class's mean training feature
        (:class:`lmbff.prototypes.PrototypeConfig`). Returns the init used."""
        layer = self.prototypes
        if layer is None:
            raise ConfigError("no prototypes to initialise: use_prototypes first")
        init = layer.config.resolved_init(self.verbalizer_kind)
        features = self.slot_features(examples)
        from_words = self._word_prototypes()
        if init == "words":
            weight = self.base_lm.get_output_embeddings().weight.float()
            # cos x |feature| x |row| is the word's logit: this scale starts the scores at the logits' size
            scale = float(features.norm(dim=-1).mean() * weight.norm(dim=-1).mean())
            layer.start_from(from_words, torch.zeros_like(features[0]), scale)
            return init
        center = features.mean(0)
        labels = torch.tensor(list(label_index), device=features.device)
        prototypes = from_words.clone()  # a class without training examples keeps its words' direction
        for label, mean in class_means(features, center, labels, range(len(self.labels))).items():
            prototypes[label] = mean
        layer.start_from(prototypes, center, layer.config.scale)
        if layer.sigmoid:
            # each label's probability starts at one half halfway between its members' mean similarity
            # and the others' (the members of a multi-label example are listed once per label)
            similarity = layer.cosine(features)
            for label in range(len(self.labels)):
                inside = labels == label
                if inside.any() and (~inside).any():
                    middle = (similarity[inside, label].mean() + similarity[~inside, label].mean()) / 2
                    layer.bias[label] = -layer.config.scale * middle
        return init

    def _word_prototypes(self) -> torch.Tensor:
        """Per label, the mean over its words of the mean of their tokens' unit output-embedding rows."""
        weight = self.base_lm.get_output_embeddings().weight
        rows = []
        for label in range(len(self.labels)):
            words = [
                ids
                for ids, owner in zip(self.words.word_ids, self.words.word_label, strict=True)
                if owner == label
            ]
            vectors = [F.normalize(weight[list(ids)].float(), dim=-1).mean(0) for ids in words]
            rows.append(F.normalize(torch.stack(vectors).mean(0), dim=-1))
        return torch.stack(rows)

    # ---- encoding -------------------------------------------------------------------------------
    def encode(
        self, examples: Sequence[Example], demonstrations: Sequence[Sequence[Example]] | None = None
    ) -> list[PromptEncoding]:
        """Encodings of examples, each with its own demonstrations when given (one list per example)."""
        if demonstrations is None:
            return [self._encode_row(example) for example in examples]
        return [
            self._encode_row(example, [(d.fields, self.demonstration_word_ids(d)) for d in demos])
            for example, demos in zip(examples, demonstrations, strict=True)
        ]

    def _encode_row(self, example: Example, demonstrations=()) -> PromptEncoding:
        """One example's encoding; a row the template cannot render is an error naming that row."""
        try:
            return self.encoder.encode(example.fields, demonstrations)
        except PromptTooLong:
            raise  # the template's own fault, whatever the row
        except TemplateError as exc:
            problem = render_problem(self.template, example)  # raises the template's own errors
            raise problem or row_error(example, f"this row cannot be encoded: {exc}") from None

    def demonstration_word_ids(self, example: Example) -> tuple[int, ...]:
        """The tokens that fill a demonstration's slot: its label's first word (regression: its pole's)."""
        label = self.task.group_label(example.label) if self.task is not None else str(example.label)
        first = self.words.word_label.index(self.verbalizer.labels.index(label))
        return self.words.word_ids[first]

    def _rows(self, enc: PromptEncoding) -> list[tuple[list[int], list[tuple[int, int, int]]]]:
        """Token rows for one example; each with (position, target, word) reads."""
        return self.scoring.rows(self, enc)

    def row_length(self, enc: PromptEncoding) -> int:
        if self.fast_path:
            return len(self._slot_row(enc)[0])
        return sum(len(ids) for ids, _ in self._rows(enc))

    def collate(self, encodings: Sequence[PromptEncoding]) -> ScoringBatch:
        """Dynamic padding: rows are padded to the longest row of this batch (right padding)."""
        if self.fast_path:
            return self._slot_batch(encodings)
        rows, entry_row, entry_pos, entry_target, entry_word = [], [], [], [], []
        n_words = len(self.words.word_ids)
        for example_index, enc in enumerate(encodings):
            for ids, reads in self._rows(enc):
                for position, target, word in reads:
                    entry_row.append(len(rows))
                    entry_pos.append(position)
                    entry_target.append(target)
                    entry_word.append(example_index * n_words + word)
                rows.append(ids)
        ids, mask = self._pad(rows)
        as_long = lambda v: torch.tensor(v, dtype=torch.long)  # noqa: E731
        return ScoringBatch(
            ids,
            mask,
            len(encodings),
            entry_row=as_long(entry_row),
            entry_pos=as_long(entry_pos),
            entry_target=as_long(entry_target),
            entry_word=as_long(entry_word),
            # one more pass over each example's one-row view: small beside one row per word
            slot=self._slot_batch(encodings) if self.prototypes is not None else None,
        )

    def _slot_batch(self, encodings: Sequence[PromptEncoding]) -> ScoringBatch:
        """One row per example, read at the slot: the mask, or the last token before the slot."""
        pairs = [self._slot_row(e) for e in encodings]
        rows, positions = [row for row, _ in pairs], [position for _, position in pairs]
        ids, mask = self._pad(rows)
        return ScoringBatch(ids, mask, len(encodings), positions=torch.tensor(positions))

    @torch.inference_mode()
    def slot_log_probs(self, examples: Sequence[Example], batch_size: int = 16) -> np.ndarray:
        """Log-probabilities of every vocabulary token at the slot (N, V), float32: what automatic
        label-word search ranks words by. One forward pass per example.

        Raises:
            ValueError: the template has text after the slot and the LM is causal (``sequence`` mode),
                where a word's score is not a single next-token distribution.
        """
        if not self.scoring.single_position:
            raise ConfigError(
                f"template {self.template.name!r} has text after the slot; on a causal LM a word is then "
                "scored with that text, not at one position. Search label words with a template that ends "
                "at the slot"
            )
        was_training = self.lm.training
        self.lm.eval()
        out = []
        encodings = self.encode(examples)
        for start in range(0, len(encodings), batch_size):
            picked = self._slot_features(
                self._slot_batch(encodings[start : start + batch_size]).to(self.device)
            )
            out.append(self._output_logits(picked).float().log_softmax(-1).cpu().numpy())
        self.lm.train(was_training)
        return np.concatenate(out)

    def _pad(self, rows: list[list[int]], left: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids and attention mask of rows padded to the longest; on the left when ``left``."""
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.adapter.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            span = slice(width - len(row), width) if left else slice(0, len(row))
            ids[i, span] = torch.tensor(row, dtype=torch.long)
            mask[i, span] = 1
        return ids, mask

    # ---- scoring --------------------------------------------------------------------------------
    def _output_logits(self, features: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        """Output-layer logits for ``features`` (N, H), for vocabulary ``rows`` only when given.

        With ``rows`` (a few label words) the product is computed in float32 whatever the weights'
        precision: it is cheap, and it is what the scores are. The full-vocabulary product runs in the
        weights' dtype (the costly part, where bf16 pays) and is returned in float32."""
        layer = self.base_lm.get_output_embeddings()
        weight = layer.weight if rows is None else layer.weight[rows]
        bias = getattr(layer, "bias", None)
        if bias is not None and rows is not None:
            bias = bias[rows]
        if rows is not None:
            with full_precision(features.device):
                weight, bias = weight.float(), None if bias is None else bias.float()
                logits = F.linear(features.float(), weight, bias)
        else:
            with compute(self.base_lm):
                logits = F.linear(features.to(weight.dtype), weight, bias).float()
        cap = getattr(self.base_lm.config, "final_logit_softcapping", None)
        if cap:
            logits = torch.tanh(logits / cap) * cap
        return logits

    def word_scores(self, batch: ScoringBatch) -> torch.Tensor:
        """Per-word scores (B, W): logits (fast path) or summed/averaged token log-probabilities."""
        return self._scores(batch)[0]

    def _slot_features(self, batch: ScoringBatch) -> torch.Tensor:
        """Features (B, H) at a one-row-per-example batch's positions."""
        with _features_before_output_layer(self.base_lm) as box:
            self.lm(input_ids=batch.input_ids, attention_mask=batch.attention_mask)
        features = box["features"]
        return features[torch.arange(features.shape[0], device=features.device), batch.positions]

    def _scores(self, batch: ScoringBatch) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """(per-word scores (B, W), or None for prototypes alone; the slot features (B, H) the
        prototypes read, or None without prototypes), from one forward pass where they share a row."""
        if batch.positions is not None:  # one row per example: its slot serves the words and the prototypes
            picked = self._slot_features(batch)
            if self.verbalizer_kind == "prototype":
                return None, picked
            rows = torch.tensor([ids[0] for ids in self.words.word_ids], device=picked.device)
            return self._output_logits(picked, rows), picked if self.prototypes is not None else None
        with _features_before_output_layer(self.base_lm) as box:
            self.lm(input_ids=batch.input_ids, attention_mask=batch.attention_mask)
        features = box["features"]
        n_words = len(self.words.word_ids)
        # Each distinct (row, position) once: the reads of several words at one mask share its softmax.
        flat = batch.entry_row * features.shape[1] + batch.entry_pos
        positions, index = torch.unique(flat, return_inverse=True)
        picked = features.reshape(-1, features.shape[-1])[positions]
        token_logprobs = self._target_log_probs(picked, batch.entry_target, index)
        total = torch.zeros(batch.num_examples * n_words, device=features.device, dtype=token_logprobs.dtype)
        total = total.index_add(0, batch.entry_word, token_logprobs)
        total = self.scoring.combine(self, total, batch.num_examples)
        slot = self._slot_features(batch.slot) if batch.slot is not None else None
        return total.view(batch.num_examples, n_words), slot

    @property
    def shares_prefix(self) -> bool:
        """Whether scoring (inference and training) may run the text before the slot once per example
        and every word's continuation on its cached keys and values (causal LMs outside the
        one-position fast path).

        Not with added modules in ``lmbff_tuning`` (soft prompts, prefixes, adapters and gates act on
        whole sequences), and not past a sliding attention window."""
        if self.kind != "causal" or self.fast_path or len(getattr(self.base_lm, "lmbff_tuning", ())):
            return False
        window = getattr(self.base_lm.config, "sliding_window", None)
        return window is None or self.encoder.max_length + self.words.max_word_length <= window

    def shared_prefix_log_scores(
        self, encodings: Sequence[PromptEncoding], calibrate: bool = True
    ) -> torch.Tensor:
        """:meth:`class_log_scores` for a batch, computing the shared text before the slot once."""
        return self._class_scores(*self._shared_prefix_word_scores(encodings), calibrate)

    def training_log_scores(self, encodings: Sequence[PromptEncoding]) -> torch.Tensor:
        """Uncalibrated :meth:`class_log_scores` of a training batch, with gradients: on the shared
        prefix where :attr:`shares_prefix` allows (the text before the slot runs once per example and
        only the words' own tokens once per word), else one row per word (or per word length)."""
        # Not under a data-parallel wrapper: the shared prefix makes two forward passes a step, and
        # DDP synchronises gradients for one forward pass per backward.
        if self.shares_prefix and self.lm is self.base_lm:
            return self.shared_prefix_log_scores(encodings, calibrate=False)
        return self.class_log_scores(self.collate(encodings).to(self.device), calibrate=False)

    def _shared_prefix_word_scores(
        self, encodings: Sequence[PromptEncoding]
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(per-word scores, the slot features when prototypes read them) on the shared prefix."""
        return shared_prefix_word_scores(self, encodings, slot_features=self.prototypes is not None)

    def _target_log_probs(
        self, features: torch.Tensor, targets: torch.Tensor, index: torch.Tensor | None = None
    ) -> torch.Tensor:
        """log P(target) for each read: read ``i`` takes ``targets[i]`` at feature row ``index[i]``
        (row ``i`` when ``index`` is None). One full-vocabulary log-softmax per feature row, whatever
        the number of targets read there (a masked LM reads every word of one length at the same
        masks), in chunks of rows: memory is bounded by a chunk, in the backward pass too."""
        if index is None:
            index = torch.arange(features.shape[0], device=features.device)
        step = logits_chunk_rows(self.base_lm.get_output_embeddings().weight.shape[0])
        out = features.new_zeros(targets.shape[0], dtype=torch.float32)
        for start in range(0, features.shape[0], step):
            reads = ((index >= start) & (index < start + step)).nonzero().squeeze(1)
            if not len(reads):
                continue
            chunk, local, wanted = features[start : start + step], index[reads] - start, targets[reads]
            if torch.is_grad_enabled():
                # Recomputed in the backward pass instead of kept: a chunk's vocabulary-wide logits and
                # log-softmax (rows x 262,144 floats on Gemma, twice) would otherwise be held for every
                # chunk until backward, so memory grew with the label words' tokens; now it is one chunk.
                values = checkpoint(self._chunk_target_log_probs, chunk, local, wanted, use_reentrant=False)
            else:  # scoring: log-sum-exp in place, so a chunk costs one logits buffer, not three
                logits = self._output_logits(chunk).float()
                picked = logits[local, wanted]
                top = logits.amax(-1, keepdim=True)
                norm = logits.sub_(top).exp_().sum(-1).log_().add_(top.squeeze(1))
                values = picked - norm[local]
            out = out.index_put((reads,), values)
        return out

    def _chunk_target_log_probs(
        self, features: torch.Tensor, local: torch.Tensor, targets: torch.Tensor
    ) -> torch.Tensor:
        return self._output_logits(features).float().log_softmax(-1)[local, targets]

    def class_log_scores(self, batch: ScoringBatch, calibrate: bool = True) -> torch.Tensor:
        """Log-probabilities over the labels (B, C); differentiable (used for training)."""
        return self._class_scores(*self._scores(batch), calibrate)

    def _class_scores(
        self, word_scores: torch.Tensor | None, slot_features: torch.Tensor | None, calibrate: bool
    ) -> torch.Tensor:
        """Class log-probabilities from the words' scores, the prototypes' or both (their product,
        renormalised), then calibrated when asked."""
        class_scores = None
        if word_scores is not None:
            scores = word_scores.float()
            labels = torch.tensor(self.words.word_label, device=scores.device)
            per_label = []
            for label in range(self.words.num_labels):
                members = scores[:, labels == label]
                per_label.append(torch.logsumexp(members, dim=1) - math.log(members.shape[1]))
            class_scores = torch.stack(per_label, dim=1).log_softmax(dim=1)
        if slot_features is not None and self.prototypes is not None and self.prototypes.sigmoid:
            # each label's own probability (multi-label); never renormalised, never calibrated
            return F.logsigmoid(self.prototypes(slot_features))
        if slot_features is not None and self.prototypes is not None:
            by_prototype = self.prototypes(slot_features).log_softmax(dim=1)
            class_scores = (
                by_prototype if class_scores is None else (class_scores + by_prototype).log_softmax(dim=1)
            )
        if calibrate and self.calibration is not None:
            class_scores = calibrate_log_scores(class_scores, self.calibration)
        return class_scores

    def forward(self, batch: ScoringBatch) -> torch.Tensor:
        return self.class_log_scores(batch)

    # ---- inference ------------------------------------------------------------------------------
    @property
    def base_lm(self) -> nn.Module:
        """The language model itself; ``lm`` may be a data-parallel wrapper of it while training."""
        return getattr(self.lm, "module", self.lm)

    @property
    def device(self) -> torch.device:
        return next(self.base_lm.parameters()).device

    def predict_log_scores(
        self,
        examples: Sequence[Example],
        batch_size: int = SCORING_BATCH_SIZE,
        progress: bool | str = False,
        calibrate: bool = True,
        demonstrations: Demonstrations | None = None,
        seed: int = 0,
    ) -> np.ndarray:
        """Class log-probabilities (N, C) for examples, in their order.

        Inference sorts examples by length so each batch pads little, and restores the order. With
        ``demonstrations``, each example is scored with ``inference_sets`` sampled demonstration sets
        and the label probabilities are averaged (LM-BFF).
        """
        if demonstrations is None:
            return self._predict(self.encode(examples), batch_size, progress, calibrate)
        rng = np.random.default_rng(seed)
        embeddings = demonstrations.query_embeddings(examples)
        exclude = demonstrations.indices_of(examples)
        total = np.zeros((len(examples), len(self.labels)), dtype=np.float64)
        sets = demonstrations.config.inference_sets
        for k in range(sets):
            demos = [
                demonstrations.sample(rng, None if embeddings is None else embeddings[i], exclude[i])
                for i in range(len(examples))
            ]
            label = f"{progress if isinstance(progress, str) else 'scoring'} (set {k + 1}/{sets})"
            scores = self._predict(self.encode(examples, demos), batch_size, progress and label, calibrate)
            total += np.exp(scores)
        return np.log(total / sets).astype(np.float32)

    def _predict(
        self, encodings: list[PromptEncoding], batch_size: int, progress: bool | str, calibrate: bool
    ) -> np.ndarray:
        return score_in_length_order(self, encodings, batch_size, progress, calibrate)

    def calibrate(self, content_free: Sequence[str] = CONTENT_FREE) -> np.ndarray:
        """Contextual calibration (Zhao et al. 2021): score content-free inputs (every field set to
        "N/A", "", "[MASK]"), average their label probabilities, and divide every later prediction by
        them. Returns the content-free label probabilities."""
        if self.prototypes is not None and self.prototypes.sigmoid:
            raise ConfigError(
                "contextual calibration renormalises the classes' probabilities; sigmoid prototypes give "
                "each label its own (its per-label threshold does what calibration would)"
            )
        self.calibration = None
        inputs = [Example({name: text for name in self.template.fields}) for text in content_free]
        probs = np.exp(self.predict_log_scores(inputs, calibrate=False)).mean(axis=0)
        self.calibration = torch.tensor(np.log(probs), dtype=torch.float32)
        return probs


@torch.inference_mode()
def score_in_length_order(
    scorer, encodings: Sequence, batch_size: int, progress: bool | str = False, calibrate: bool = True
) -> np.ndarray:
    """Class log-scores of encodings, in their order, computed longest first so batches pad little.

    Under a launcher with several processes, each scores every ``world``-th batch and all end with every
    score (:mod:`lmbff.distributed`); the batches are the same as in one process, so are the scores.
    ``scorer`` offers ``lm``, ``labels``, ``device``, ``row_length``, ``collate`` and ``class_log_scores``
    (a PromptModel, or the fine-tuning baseline)."""
    from . import distributed

    was_training = scorer.lm.training
    scorer.lm.eval()
    order = sorted(range(len(encodings)), key=lambda i: -scorer.row_length(encodings[i]))
    batches = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    wrapped = hasattr(scorer.lm, "module")  # a data-parallel wrapper while training: score everything
    mine = distributed.my_batches(batches, wrapped)
    desc = progress if isinstance(progress, str) else "scoring"
    shared = getattr(scorer, "shares_prefix", False)
    index: list[int] = []
    rows: list[torch.Tensor] = []
    for b in tqdm(mine, desc=desc, disable=not progress, unit="batch"):
        chosen = [encodings[i] for i in batches[b]]
        if shared:
            scores = scorer.shared_prefix_log_scores(chosen, calibrate=calibrate)
        else:
            scores = scorer.class_log_scores(scorer.collate(chosen).to(scorer.device), calibrate=calibrate)
        index += batches[b]
        rows.append(scores.float().cpu())
    scorer.lm.train(was_training)
    width = len(scorer.labels)
    mine_rows = torch.cat(rows) if rows else torch.zeros((0, width), dtype=torch.float32)
    gathered = distributed.gather_rows(
        torch.tensor(index, dtype=torch.long), mine_rows, len(encodings), wrapped
    )
    return gathered.numpy()


def regression_prediction(log_scores: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    """LM-BFF's regression read-out: low + (high - low) * P(upper pole)."""
    low, high = value_range
    return low + (high - low) * np.exp(log_scores[:, 1])


def regression_targets(values: Sequence[float], value_range: tuple[float, float]) -> torch.Tensor:
    """The two-pole target distribution (1 - p, p) with p = (y - low) / (high - low)."""
    low, high = value_range
    p = torch.tensor([(v - low) / (high - low) for v in values], dtype=torch.float32)
    return torch.stack([1 - p, p], dim=1)
