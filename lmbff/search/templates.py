"""``lmbff search-templates``: LM-BFF's automatic templates, and a generator-free pool mode.

Generation: a T5-style model fills the spans <X>, <Y> of each shape (``prompts.template_search``)
for every training example at once; the beam search is *joint* (LM-BFF): a candidate's score is the
sum over all training examples of the log-likelihood of the same decoded spans, so the search looks
for one template that fits the whole training set. Written by hand because ``generate()`` decodes
each input on its own.

Scoring: every candidate (generated, or from a pool) is scored by zero-shot dev accuracy of the
scoring model with the task's label words; the best are kept.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from prompts.library import Task
from prompts.template import Template
from prompts.verbalizer import Verbalizer

from ..config import TemplateSearchConfig
from ..data import Example
from ..errors import ConfigError, ModelError
from ..evaluate import score_examples
from ..model import PromptModel
from .template_candidates import (
    CandidateTemplate,
    pool_for,
    shapes_for,
    template_from_spans,
    unique,
    valid_template,
)

SENTINELS = ("<extra_id_0>", "<extra_id_1>", "<extra_id_2>")


def _sentinel_ids(tokenizer) -> tuple[int, int, int]:
    ids = tokenizer.convert_tokens_to_ids(list(SENTINELS))
    if any(i is None or i == tokenizer.unk_token_id for i in ids):
        raise ModelError(
            "the generator's tokenizer has no T5 sentinel tokens (<extra_id_0>, <extra_id_1>, <extra_id_2>); "
            "template generation needs a T5-style span-filling model"
        )
    return tuple(ids)


def generator_inputs(shape: str, examples: Sequence[Example], label_words: dict[str, str]) -> list[str]:
    """The generator's input per example: the shape with the fields, the example's own label word and
    the sentinels for the spans to fill."""
    out = []
    for e in examples:
        text = shape.replace("<X>", SENTINELS[0]).replace("<Y>", SENTINELS[1])
        text = text.replace("{word}", label_words[str(e.label)])
        for name, value in e.fields.items():
            text = text.replace("{" + name + "}", str(value))
        out.append(text)
    return out


@torch.inference_mode()
def joint_beam_search(
    generator, tokenizer, inputs: Sequence[str], beam: int, max_new_tokens: int, rows_per_pass: int = 512
) -> list[tuple[str, str, float, list[int]]]:
    """Span pairs (X, Y, summed log-likelihood, decoded token ids) decoded jointly for all inputs,
    best first.

    Output format (T5's): ``<extra_id_0> X <extra_id_1> Y <extra_id_2>`` (or end of sequence).
    """
    from transformers.modeling_outputs import BaseModelOutput

    x0, x1, x2 = _sentinel_ids(tokenizer)
    eos = tokenizer.eos_token_id
    encoded = tokenizer(list(inputs), return_tensors="pt", padding=True, truncation=True, max_length=256)
    device = next(generator.parameters()).device
    encoded = {k: v.to(device) for k, v in encoded.items()}
    hidden = generator.get_encoder()(**encoded).last_hidden_state  # (E, L, H)
    n_inputs = hidden.shape[0]
    start = generator.config.decoder_start_token_id
    banned = set(tokenizer.all_special_ids) - {x1, x2, eos}
    beams: list[tuple[list[int], float]] = [([x0], 0.0)]
    finished: list[tuple[list[int], float]] = []
    for step in range(max_new_tokens):
        left = max_new_tokens - step  # tokens still to decode, this one included
        totals = []
        per_pass = max(1, rows_per_pass // n_inputs)
        for chunk_start in range(0, len(beams), per_pass):
            chunk = beams[chunk_start : chunk_start + per_pass]
            decoder = torch.tensor([[start, *seq] for seq, _ in chunk], device=device)
            logits = generator(
                encoder_outputs=BaseModelOutput(last_hidden_state=hidden.repeat(len(chunk), 1, 1)),
                attention_mask=encoded["attention_mask"].repeat(len(chunk), 1),
                decoder_input_ids=decoder.repeat_interleave(n_inputs, dim=0),
            ).logits[:, -1]
            summed = logits.float().log_softmax(-1).view(len(chunk), n_inputs, -1).sum(1)
            totals.append(summed)
        scores = torch.cat(totals) + torch.tensor([s for _, s in beams], device=device)[:, None]
        scores[:, list(banned)] = -float("inf")
        for row, (seq, _) in enumerate(beams):
            # The budget forces the structure: Y's sentinel while two tokens are left, the end at the last.
            if x1 in seq:
                scores[row, x1] = -float("inf")
                if left == 1:
                    keep = scores[row, [x2, eos]].clone()
                    scores[row] = -float("inf")
                    scores[row, [x2, eos]] = keep
            else:
                scores[row, [x2, eos]] = -float("inf")
                if left <= 2:
                    keep = scores[row, x1].clone()
                    scores[row] = -float("inf")
                    scores[row, x1] = keep
        flat = scores.view(-1)
        order = torch.argsort(flat, descending=True)
        vocab = scores.shape[1]
        next_beams = []
        for index in order.tolist():
            value = float(flat[index])
            if value == -float("inf") or len(next_beams) >= beam:
                break
            row, token = divmod(index, vocab)
            seq = [*beams[row][0], token]
            (finished if token in (x2, eos) else next_beams).append((seq, value))
        beams = next_beams
        if not beams:
            break
    spans = []
    for seq, score in sorted(finished, key=lambda f: -f[1]):
        middle = seq[1:-1]
        split = middle.index(x1)
        x = tokenizer.decode(middle[:split], skip_special_tokens=True)
        y = tokenizer.decode(middle[split + 1 :], skip_special_tokens=True)
        spans.append((x, y, score, seq))
    return spans


def generate_templates(
    generator,
    tokenizer,
    task: Task,
    examples: Sequence[Example],
    label_words: dict[str, str],
    config: TemplateSearchConfig,
) -> list[CandidateTemplate]:
    """Candidate templates from every shape, valid and distinct, in the generator's order."""
    candidates = []
    for shape in shapes_for(task.fields):
        inputs = generator_inputs(shape, examples, label_words)
        for x, y, score, _ in joint_beam_search(
            generator, tokenizer, inputs, config.beam, config.max_span_tokens
        ):
            text = template_from_spans(shape, x, y)
            if valid_template(text, task.fields):
                candidates.append(CandidateTemplate(text, score, f"generated, shape {shape!r}"))
    return unique(candidates)


def pool_candidates(task: Task, texts: Sequence[str] | None = None) -> list[CandidateTemplate]:
    """The built-in pool for the task's fields, or the given template texts (invalid ones refused).

    Raises:
        ValueError: a given template does not parse, render with the task's fields, or has no slot.
    """
    source = "user pool" if texts else "built-in pool"
    out = []
    for text in texts or pool_for(task.fields):
        if not valid_template(text, task.fields):
            raise ConfigError(
                f"pool template {text!r} does not render with fields {list(task.fields)} "
                "and exactly one {{ mask }}"
            )
        out.append(CandidateTemplate(text, None, source))
    return unique(out)


def score_templates(
    lm,
    tokenizer,
    kind,
    task: Task,
    label_words: dict[str, list[str]],
    candidates: Sequence[CandidateTemplate],
    dev: Sequence[Example],
    *,
    max_length: int = 128,
    progress: bool = True,
) -> list[CandidateTemplate]:
    """Candidates with their zero-shot dev score (the task's metric), best first."""
    scored = []
    verbalizer = Verbalizer(label_words, task.labels)
    for c in tqdm(candidates, desc="scoring templates", disable=not progress):
        template = Template(c.text, name="candidate")
        scorer = PromptModel(
            lm,
            tokenizer,
            template,
            verbalizer,
            kind=kind,
            max_length=max_length,
            field_limits=task.field_limits,
            truncate_side=task.truncate_side,
        )
        scorer.task = task
        log_scores = scorer.predict_log_scores(dev)
        scored.append(CandidateTemplate(c.text, score_examples(task, dev, log_scores, "dev").score, c.source))
    order = np.argsort([-c.score for c in scored], kind="stable")
    return [scored[i] for i in order]


def search_templates(
    lm,
    tokenizer,
    kind,
    task: Task,
    label_words: dict[str, list[str]],
    train: Sequence[Example],
    dev: Sequence[Example],
    config: TemplateSearchConfig,
    *,
    generator=None,
    generator_tokenizer=None,
    pool: Sequence[str] | None = None,
    max_length: int = 128,
    progress: bool = True,
) -> tuple[list[CandidateTemplate], float]:
    """The ``top`` templates by dev score and the seconds the search took. With a generator, the
    candidates are generated (LM-BFF); without one, they come from ``pool`` or the built-in pool."""
    if task.is_regression:
        raise ConfigError(f"{task.name} is a regression task; score templates on a classification task")
    started = time.perf_counter()
    if generator is not None:
        first_words = {label: words[0] for label, words in label_words.items()}
        candidates = generate_templates(generator, generator_tokenizer, task, train, first_words, config)
    else:
        candidates = pool_candidates(task, pool)
    if not candidates:
        raise ConfigError("the generator produced no valid template; widen --beam or --max-span-tokens")
    ranked = score_templates(
        lm, tokenizer, kind, task, label_words, candidates, dev, max_length=max_length, progress=progress
    )
    return ranked[: config.top], time.perf_counter() - started
