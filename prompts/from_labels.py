"""A task without a YAML file: built from labels, a template and label words (or label words derived
from the label names)."""

from __future__ import annotations

import re

from .task import (
    METRICS,
    MULTI_LABEL_METRICS,
    SINGLE_LABEL_METRICS,
    PromptSpec,
    Task,
    TaskFile,
    TaskFileError,
)
from .task_schema import label_word_problems
from .template import Template, TemplateLocation


def template_fields_in_order(template: Template) -> tuple[str, ...]:
    """The fields a template reads, in the order they first appear in its text."""

    def first(name: str) -> int:
        found = re.search(rf"\b{re.escape(name)}\b", template.text)
        return found.start() if found else len(template.text)

    return tuple(sorted(template.fields, key=lambda name: (first(name), name)))


def label_word_from_name(label: str) -> str:
    """A label name as a label word: underscores as spaces, camelCase split and lower-cased
    (``credit_limit_change`` and ``creditLimitChange`` -> ``credit limit change``); other names as
    they are (``World``, ``Sci/Tech``)."""
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", label) if "_" not in label and " " not in label else label
    if text != label:
        text = text.lower()
    return re.sub(r"[_\s]+", " ", text).strip() or label


def task_file_from_labels(
    labels: list[str],
    template: str,
    label_words: dict[str, str | list[str]] | list[str | list[str]] | None = None,
    *,
    name: str = "zero-shot",
    metric: str | None = None,
    multi_label: bool = False,
    allow_empty: bool = False,
    label_delimiter: str | None = None,
) -> TaskFile:
    """A task defined in code, without a YAML file: its fields are the template's variables (in order
    of appearance), its label words default to the label names as words (:func:`label_word_from_name`).

    Raises:
        TaskFileError: no labels, repeated labels, a template without exactly one ``{{ mask }}`` or
            without a field, label words for unknown labels, or an empty label word.
    """
    where = f"<{name}>"

    def fail(key: str, message: str, suggestion: str | None = None) -> TaskFileError:
        return TaskFileError(where, None, key, message, suggestion)

    names = [str(label) for label in labels] if labels is not None else []
    if not names:
        raise fail("labels", "give at least one label", "e.g. labels=['World', 'Sports']")
    if len(set(names)) != len(names):
        raise fail("labels", f"labels repeat: {names}")
    metric = metric if metric is not None else ("micro_f1" if multi_label else "accuracy")
    if metric not in METRICS:
        raise fail("metric", f"unknown metric {metric!r}", f"one of {', '.join(METRICS)}")
    allowed = MULTI_LABEL_METRICS if multi_label else SINGLE_LABEL_METRICS
    if metric not in allowed:
        kind = "a multi-label task" if multi_label else "a task with one label per example"
        raise fail("metric", f"{metric!r} does not score {kind}", f"one of {', '.join(allowed)}")
    if allow_empty and not multi_label:
        raise fail("allow_empty", "only a multi-label task may give an example no label")
    if label_delimiter is not None:
        if not multi_label:
            raise fail("label_delimiter", "only a multi-label task splits its label field")
        clash = [label for label in names if label_delimiter in label]
        if not label_delimiter or clash:
            raise fail("label_delimiter", f"{label_delimiter!r} is empty or inside the label {clash[:1]}")
    compiled = Template(template, name=name, location=TemplateLocation(where))
    compiled.render_parts({f: "x" for f in compiled.fields})  # exactly one slot, or TemplateError
    fields = template_fields_in_order(compiled)
    if not fields:
        raise fail("template", "reads no field", 'e.g. "{{ text }} Topic: {{ mask }}."')
    if label_words is None:
        words: dict[str, list[str]] = {label: [label_word_from_name(label)] for label in names}
    elif isinstance(label_words, dict):
        words = {str(k): [v] if isinstance(v, str) else [str(w) for w in v] for k, v in label_words.items()}
    else:
        if len(label_words) != len(names):
            raise fail("label_words", f"{len(label_words)} label words for {len(names)} labels")
        words = {
            label: [w] if isinstance(w, str) else [str(x) for x in w]
            for label, w in zip(names, label_words, strict=True)
        }
    task = Task(
        name=name,
        fields=fields,
        labels=tuple(names),
        metric=metric,
        multi_label=multi_label,
        allow_empty=allow_empty,
        label_delimiter=label_delimiter,
    )
    problems = label_word_problems(task, words)
    if problems:
        raise fail("label_words", "; ".join(message for _, message in problems))
    prompt = PromptSpec(name, compiled, words)
    return TaskFile(where, task, {name: prompt}, name)
