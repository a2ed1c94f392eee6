"""Automatic templates: the pieces that need no model.

LM-BFF (Gao et al. 2021, section 5.2) asks a T5-style model to fill two spans around the input and
the label word, e.g. ``<text_a> <X> <label word> <Y>``; each decoded pair of spans becomes a template
``{{ text_a }} X {{ mask }} Y``. This module holds the span shapes, the conversion of decoded spans
into sandbox-checked Jinja templates, the built-in pool of candidate templates for the
generator-free mode, and the YAML writer for the winners.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import yaml

from prompts.template import Template, TemplateError

# Where the two generated spans <X>, <Y> go relative to the fields and the label word (LM-BFF's
# shapes: spans around the label word, after the first sentence, before the second).
SINGLE_SHAPES = ("{text_a} <X> {word} <Y>", "<X> {word} <Y> {text_a}")
PAIR_SHAPES = ("{text_a} <X> {word} <Y> {text_b}",)

# Generator-free mode: cloze templates in the style of LM-BFF's manual and generated ones
# (Gao et al. 2021, Tables 1 and 4), scored by dev accuracy on the user's model.
SINGLE_POOL = (
    "{{ text_a }} It was {{ mask }}.",
    "{{ text_a }} It is {{ mask }}.",
    "{{ text_a }} This is {{ mask }}.",
    "{{ text_a }} A {{ mask }} one.",
    "{{ text_a }} A {{ mask }} piece of work.",
    "{{ text_a }} All in all, it was {{ mask }}.",
    "{{ text_a }} In summary, it was {{ mask }}.",
    "{{ text_a }} The movie is {{ mask }}.",
    "{{ text_a }} I thought it was {{ mask }}.",
    "{{ text_a }} Overall, {{ mask }}.",
    "It was {{ mask }}. {{ text_a }}",
    "{{ mask }}: {{ text_a }}",
    "{{ text_a }} Is it {{ mask }}?",
    "{{ text_a }} The answer is {{ mask }}.",
)
PAIR_POOL = (
    "{{ text_a | strip_final_punct }} ? {{ mask }}, {{ text_b }}",
    "{{ text_a | strip_final_punct }}. {{ mask }}, {{ text_b }}",
    "{{ text_a }} {{ mask }}, {{ text_b }}",
    "{{ text_a | strip_final_punct }} ? {{ mask }}. {{ text_b }}",
    "{{ text_a }} {{ mask }}! {{ text_b }}",
    "{{ text_a }} {{ mask }}, in other words, {{ text_b }}",
    "{{ text_b }} ? {{ mask }}, {{ text_a }}",
)


@dataclass(frozen=True)
class CandidateTemplate:
    text: str
    score: float | None = None  # generator's log-likelihood, or dev accuracy once scored
    source: str = ""


def shapes_for(fields: Sequence[str]) -> tuple[str, ...]:
    return SINGLE_SHAPES if len(fields) == 1 else PAIR_SHAPES


def pool_for(fields: Sequence[str]) -> tuple[str, ...]:
    return SINGLE_POOL if len(fields) == 1 else PAIR_POOL


_UNSAFE = re.compile(r"[{}%#]")  # Jinja syntax never belongs in a generated span


def template_from_spans(shape: str, x: str, y: str) -> str:
    """The Jinja template for a shape and its two decoded spans (Jinja characters removed)."""
    x, y = (_UNSAFE.sub("", s).strip() for s in (x, y))
    text = shape.replace("{text_a}", "{{ text_a }}").replace("{text_b}", "{{ text_b }}")
    text = text.replace("{word}", "{{ mask }}").replace("<X>", x).replace("<Y>", y)
    text = re.sub(r"\s+", " ", text).strip()
    return re.sub(r"\s+([.,!?;:])", r"\1", text)  # "great ." -> "great."


def valid_template(text: str, fields: Sequence[str]) -> bool:
    """Parses and renders in the sandbox with the task's fields, and has exactly one slot."""
    try:
        template = Template(text, name="candidate")
        template.render_parts({name: "x" for name in fields})
    except TemplateError:
        return False
    return text.count("{{ mask }}") == 1


def unique(candidates: Sequence[CandidateTemplate]) -> list[CandidateTemplate]:
    seen: set[str] = set()
    out = []
    for c in candidates:
        if c.text not in seen:
            seen.add(c.text)
            out.append(c)
    return out


def templates_yaml(candidates: Sequence[CandidateTemplate], label_words: dict, prefix: str = "auto") -> str:
    """A ``templates:`` block for a task file: the candidates, best first, with the label words used."""
    block = {
        f"{prefix}_{i + 1}": {
            "text": c.text,
            "label_words": label_words,
            "reference": f"automatic template search ({c.source}); dev score {c.score:.4f}"
            if c.score is not None
            else f"automatic template search ({c.source})",
        }
        for i, c in enumerate(candidates)
    }
    return yaml.safe_dump({"templates": block}, sort_keys=False, allow_unicode=True, width=1000)
