"""Validating a task file: every problem of its task block, templates and label words, each located
by file, line and key path (``templates.lmbff.text``)."""

from __future__ import annotations

import os
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import Any

import yaml

from .task import (
    METRICS,
    MULTI_LABEL_METRICS,
    SINGLE_LABEL_METRICS,
    PromptSpec,
    Task,
    TaskFile,
    TaskFileError,
)
from .template import DEFAULT_BUDGET, RenderBudget, Template, TemplateError, TemplateLocation
from .verbalizer import VERBALIZERS
from .verbalizer import label_word_problems as verbalizer_problems
from .yaml_strict import YamlLines, strict_yaml


def _typed_scalar_problem(node, value) -> str | None:
    """Why a scalar the loader typed as a non-string cannot stand for the text written, or None.

    A label, a label word or a field name is text. A plain scalar the schema types (``true``, ``~``,
    ``010``, ``1e3``) is accepted only where its value prints back as exactly what was written (``0``,
    ``1``, ``True``); otherwise it is an error with the quoted form to write."""
    if isinstance(value, str):
        return None
    written = node.value if isinstance(node, yaml.ScalarNode) else None
    if (
        written is not None
        and value is not None
        and not isinstance(value, (list, dict))
        and str(value) == written
    ):
        return None
    if written is None:
        return f"expected text, got {type(value).__name__} {value!r:.60}"
    kind = "null" if value is None else type(value).__name__
    return f"YAML reads {written!r} as the {kind} {value!r}, not as the text {written!r}"


class _Problems:
    """Collects located problems: ``problem(key_path, message, suggestion)``."""

    def __init__(self, file: str, lines: YamlLines, errors: list[TaskFileError]):
        self.file, self.lines, self.errors = file, lines, errors

    def __call__(
        self, key: tuple[str, ...], message: str, suggestion: str | None = None, line: int | None = None
    ) -> None:
        self.errors.append(
            TaskFileError(self.file, line or self.lines.line(*key), ".".join(key), message, suggestion)
        )


_FAILED = object()  # a text value whose problem is already reported


def _scalar_text(problem: _Problems, key: tuple[str, ...], node, value) -> Any:
    """The text of one scalar at ``key`` (``node`` its YAML node, or None), or ``_FAILED`` after
    reporting why it is not text (see :func:`_typed_scalar_problem`)."""
    message = _typed_scalar_problem(node, value)
    if message is None:
        return value if isinstance(value, str) else node.value
    written = getattr(node, "value", None)
    problem(
        key,
        message,
        f"write it in quotes: '{written}'" if isinstance(written, str) else None,
        line=node.start_mark.line + 1 if node is not None else None,
    )
    return _FAILED


def _text_list(problem: _Problems, key: tuple[str, ...], value: Any) -> Any:
    """A non-empty list of texts at ``key``; None when it is not a non-empty list of scalars (the
    caller says what was expected), ``_FAILED`` when an item is typed (already reported)."""
    if not isinstance(value, list) or not value or any(isinstance(v, (list, dict)) for v in value):
        return None
    node = problem.lines.node_at(*key)
    items = node.value if isinstance(node, yaml.SequenceNode) and len(node.value) == len(value) else None
    texts = [_scalar_text(problem, key, items[i] if items else None, v) for i, v in enumerate(value)]
    return _FAILED if any(t is _FAILED for t in texts) else texts


def _text_mapping(problem: _Problems, key: tuple[str, ...], value: dict) -> list[tuple[Any, Any, Any]]:
    """(key text or _FAILED, value, value node or None) for each entry of a mapping, in order: the
    keys of a label_words or label_names mapping are labels, so text."""
    node = problem.lines.node_at(*key)
    pairs = node.value if isinstance(node, yaml.MappingNode) and len(node.value) == len(value) else None
    out = []
    for i, name in enumerate(value):
        key_node, value_node = pairs[i] if pairs else (None, None)
        written = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(name)
        out.append((_scalar_text(problem, (*key, written), key_node, name), value[name], value_node))
    return out


def parse_task_file(path: str | os.PathLike) -> tuple[TaskFile | None, list[TaskFileError]]:
    """Read a task file and collect every problem in it (nothing is raised)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [TaskFileError(str(path), None, "", f"cannot read: {exc}")]
    return parse_task_text(text, str(path))


def parse_task_text(text: str, file: str) -> tuple[TaskFile | None, list[TaskFileError]]:
    """Parse the text of a task file (``file`` names it in messages) and collect every problem."""
    errors: list[TaskFileError] = []
    try:
        node, data = strict_yaml(text, file)
    except TaskFileError as exc:
        return None, [exc]
    lines = YamlLines(node)
    problem = _Problems(file, lines, errors)

    if not isinstance(data, dict):
        return None, [TaskFileError(file, 1, "", "expected a mapping with 'task' and 'templates'")]
    for key in data:
        if key not in ("task", "templates", "default_template", "render_budget"):
            problem((str(key),), "unknown key", "expected task, templates, default_template, render_budget")
    budget = _parse_budget(data.get("render_budget"), problem)
    task_data = data.get("task")
    if not isinstance(task_data, dict):
        problem(("task",), "missing or not a mapping", "add a task block with name, fields, labels, metric")
        return None, errors
    task = _parse_task(task_data, problem)
    templates_data = data.get("templates")
    prompts: dict[str, PromptSpec] = {}
    if not isinstance(templates_data, dict) or not templates_data:
        problem(
            ("templates",), "missing or empty", "add at least one named template with text and label_words"
        )
    else:
        for name, spec in templates_data.items():
            parsed = _parse_prompt(str(name), spec, task, file, lines, problem, budget)
            if parsed is not None:
                prompts[parsed.name] = parsed
    default = data.get("default_template")
    names = sorted(str(name) for name in templates_data) if isinstance(templates_data, dict) else []
    if default is None and names:
        default = str(next(iter(templates_data)))
    if default is not None and not isinstance(default, (str, int)):
        problem(("default_template",), f"expected a template name, got {default!r:.60}", f"one of {names}")
    elif isinstance(templates_data, dict) and str(default) not in names:
        problem(("default_template",), f"names no template: {default!r}", f"one of {names}")
    if errors or task is None:
        return None, errors
    return TaskFile(file, task, prompts, str(default)), errors


_TASK_KEYS = {
    "name",
    "description",
    "fields",
    "labels",
    "metric",
    "type",
    "positive_label",
    "range",
    "split_threshold",
    "field_limits",
    "truncate_side",
    "label_names",
    "multi_label",
    "label_delimiter",
    "allow_empty",
}


def _parse_task(data: dict, problem: _Problems) -> Task | None:
    """The task block as a Task, or None after reporting every problem it has."""
    for key in data:
        if key not in _TASK_KEYS:
            problem(("task", str(key)), "unknown key", f"expected one of {sorted(_TASK_KEYS)}")
    task_name = data.get("name")
    ok = isinstance(task_name, str) and bool(task_name.strip())
    if not ok:
        problem(("task", "name"), "missing task name")
    fields = _text_list(problem, ("task", "fields"), data.get("fields"))
    if fields is None:
        problem(("task", "fields"), "expected a non-empty list of field names, e.g. [text_a, text_b]")
    if fields is None or fields is _FAILED:
        fields, ok = None, False
    labels = _text_list(problem, ("task", "labels"), data.get("labels"))
    if labels is None:
        problem(("task", "labels"), "expected a non-empty list of labels")
    if labels is None or labels is _FAILED:
        labels, ok = None, False
    elif len(set(labels)) != len(labels):
        problem(("task", "labels"), f"labels repeat: {labels}")
        ok = False
    multi_ok, multi_label, delimiter, allow_empty = _multi_label(data, labels, problem)
    metric = data.get("metric", "micro_f1" if multi_label else "accuracy")
    if metric not in METRICS:
        problem(("task", "metric"), f"unknown metric {metric!r}", f"one of {', '.join(METRICS)}")
        ok = False
    elif multi_label and metric not in MULTI_LABEL_METRICS:
        problem(
            ("task", "metric"),
            f"{metric!r} scores one label per example; a multi-label task is scored by "
            f"{', '.join(MULTI_LABEL_METRICS)} (hamming_loss is reported for every multi-label run)",
            "e.g. metric: micro_f1",
        )
        ok = False
    elif not multi_label and metric not in SINGLE_LABEL_METRICS:
        problem(
            ("task", "metric"),
            f"{metric!r} is a multi-label metric; this task has one label per example",
            f"one of {', '.join(SINGLE_LABEL_METRICS)}, or set multi_label: true",
        )
        ok = False
    kind_ok, task_type, value_range = _task_type(data, labels, problem)
    if multi_label and task_type == "regression":
        problem(("task", "multi_label"), "a regression task has one value per example, not several labels")
        ok = False
    positive_ok, positive = _positive_label(data, labels, problem)
    limits_ok, limits, sides = _truncation_rules(data, fields, problem)
    names_ok, names = _label_names(data, problem)
    if not (ok and kind_ok and positive_ok and limits_ok and names_ok and multi_ok):
        return None
    return Task(
        name=task_name.strip(),
        fields=tuple(fields),
        labels=tuple(labels),
        metric=metric,
        type=task_type,
        description=str(data.get("description", "")),
        positive_label=positive,
        value_range=tuple(float(v) for v in value_range) if task_type == "regression" else None,
        split_threshold=float(data["split_threshold"]) if data.get("split_threshold") is not None else None,
        field_limits=limits,
        truncate_side=sides,
        label_names=names,
        multi_label=multi_label,
        label_delimiter=delimiter,
        allow_empty=allow_empty,
    )


def _multi_label(data: dict, labels, problem: _Problems) -> tuple[bool, bool, str | None, bool]:
    """(ok, multi_label, label_delimiter, allow_empty) as the task block declares them."""
    ok = True
    flags = {}
    for key in ("multi_label", "allow_empty"):
        value = data.get(key, False)
        if not isinstance(value, bool):
            problem(("task", key), f"expected true or false, got {value!r:.60}")
            ok, value = False, False
        flags[key] = value
    delimiter = data.get("label_delimiter")
    if delimiter is not None:
        node = problem.lines.node_at("task", "label_delimiter")
        delimiter = _scalar_text(problem, ("task", "label_delimiter"), node, delimiter)
        if delimiter is _FAILED:
            ok, delimiter = False, None
        elif delimiter == "" or (delimiter.strip() != delimiter and delimiter.strip()):
            problem(
                ("task", "label_delimiter"),
                f"expected the text between two labels, without spaces around it, got {delimiter!r}",
                "e.g. label_delimiter: ','",
            )
            ok, delimiter = False, None
        elif not flags["multi_label"]:
            problem(
                ("task", "label_delimiter"),
                "only a multi-label task splits its label field",
                "set multi_label: true",
            )
            ok = False
        elif labels is not None and any(delimiter in label for label in labels):
            clash = next(label for label in labels if delimiter in label)
            problem(
                ("task", "label_delimiter"),
                f"the label {clash!r} contains the delimiter {delimiter!r}: rows would be split inside it",
            )
            ok = False
    if flags["allow_empty"] and not flags["multi_label"]:
        problem(
            ("task", "allow_empty"),
            "only a multi-label task may give a row no label",
            "set multi_label: true",
        )
        ok = False
    return ok, flags["multi_label"], delimiter, flags["allow_empty"]


def _task_type(data: dict, labels, problem: _Problems) -> tuple[bool, str, Any]:
    """(ok, classification or regression, the regression range as written)."""
    ok = True
    task_type = data.get("type", "classification")
    if task_type not in ("classification", "regression"):
        problem(("task", "type"), f"unknown type {task_type!r}", "classification or regression")
        ok = False
    value_range = data.get("range")
    if task_type == "regression":
        if not (
            isinstance(value_range, list)
            and len(value_range) == 2
            and all(isinstance(v, (int, float)) for v in value_range)
            and value_range[0] < value_range[1]
        ):
            problem(("task", "range"), "a regression task needs range: [low, high]")
            ok = False
        if labels is not None and len(labels) != 2:
            problem(("task", "labels"), "a regression task has exactly two labels, its low and high poles")
            ok = False
    return ok, task_type, value_range


def _positive_label(data: dict, labels, problem: _Problems) -> tuple[bool, str | None]:
    """(ok, the label F1 counts as positive, or None)."""
    positive = data.get("positive_label")
    if positive is None:
        return True, None
    positive = _scalar_text(
        problem, ("task", "positive_label"), problem.lines.node_at("task", "positive_label"), positive
    )
    if positive is _FAILED:
        return False, None
    if labels is not None and positive not in labels:
        problem(("task", "positive_label"), f"{positive!r} is not one of the labels {labels}")
        return False, None
    return True, positive


def _truncation_rules(data: dict, fields, problem: _Problems) -> tuple[bool, dict, dict]:
    """(ok, field -> token limit, field -> the side cut first)."""
    ok = True
    limits = data.get("field_limits") or {}
    sides = data.get("truncate_side") or {}
    for key, mapping in (("field_limits", limits), ("truncate_side", sides)):
        if not isinstance(mapping, dict):
            problem(("task", key), "expected a mapping from field name to a value")
            ok = False
            continue
        for field_name, value in mapping.items():
            if fields is not None and field_name not in fields:
                problem(("task", key, str(field_name)), f"not a field of the task {fields}")
                ok = False
            if key == "field_limits" and (not isinstance(value, int) or value < 1):
                problem(("task", key, str(field_name)), f"expected a positive token count, got {value!r}")
                ok = False
            if key == "truncate_side" and value not in ("start", "end"):
                problem(("task", key, str(field_name)), f"expected start or end, got {value!r}")
                ok = False
    return (
        ok,
        dict(limits) if isinstance(limits, dict) else {},
        dict(sides) if isinstance(sides, dict) else {},
    )


def _label_names(data: dict, problem: _Problems) -> tuple[bool, dict[str, str]]:
    """(ok, label -> display name)."""
    raw_names = data.get("label_names") or {}
    if not isinstance(raw_names, dict):
        problem(("task", "label_names"), "expected a mapping from each label to its display name")
        return False, {}
    ok, names = True, {}
    for label, value, node in _text_mapping(problem, ("task", "label_names"), raw_names):
        text = _scalar_text(problem, ("task", "label_names", str(label)), node, value)
        if label is _FAILED or text is _FAILED:
            ok = False
        else:
            names[label] = text
    return ok, names


def _parse_budget(data: Any, problem: _Problems) -> RenderBudget:
    """The task file's ``render_budget`` (any of its three keys), else the defaults."""
    if data is None:
        return DEFAULT_BUDGET
    if not isinstance(data, dict):
        problem(("render_budget",), "expected a mapping", "max_iterations, max_output_chars, timeout_seconds")
        return DEFAULT_BUDGET
    known = {f.name for f in dataclass_fields(RenderBudget)}
    for key in data:
        if key not in known:
            problem(("render_budget", str(key)), "unknown key", f"one of {sorted(known)}")
    try:
        return RenderBudget(**{k: v for k, v in data.items() if k in known})
    except ValueError as exc:
        problem(("render_budget",), str(exc))
        return DEFAULT_BUDGET


def _parse_prompt(
    name: str,
    spec: Any,
    task: Task | None,
    file: str,
    lines: YamlLines,
    problem: _Problems,
    budget: RenderBudget = DEFAULT_BUDGET,
) -> PromptSpec | None:
    key = ("templates", name)
    if not isinstance(spec, dict):
        problem(key, "expected a mapping with text and label_words")
        return None
    for k in spec:
        if k not in ("text", "label_words", "reference", "description", "verbalizer"):
            problem(
                (*key, str(k)),
                "unknown key",
                "expected text, label_words, reference, description, verbalizer",
            )
    verbalizer = spec.get("verbalizer", "words")
    if verbalizer not in VERBALIZERS:
        problem(
            (*key, "verbalizer"),
            f"unknown verbalizer {verbalizer!r}",
            f"expected one of {', '.join(VERBALIZERS)}",
        )
        verbalizer = "words"
    text = spec.get("text")
    if not isinstance(text, str) or not text.strip():
        problem((*key, "text"), "missing template text", 'e.g. text: "{{ text_a }} It was {{ mask }}."')
        return None
    location = TemplateLocation(file, lines.text_start(*key, "text"))
    try:
        template = Template(text, name=name, location=location, budget=budget)
    except TemplateError as exc:
        problem((*key, "text"), exc.message, line=exc.file_line)
        return None
    words = spec.get("label_words")
    label_words: dict[str, list[str]] = {}
    word_lines: dict[tuple[str, str], int] = {}
    typed = False  # a label or word the schema typed (reported): the rest is checked once it is text
    if not isinstance(words, dict) or not words:
        problem((*key, "label_words"), "expected a mapping from each label to its word(s)")
        return None
    for label, value, node in _text_mapping(problem, (*key, "label_words"), words):
        where = (*key, "label_words", str(label))
        items = [value] if not isinstance(value, list) else value
        nodes = [node] if not isinstance(value, list) else getattr(node, "value", None)
        if not items or any(isinstance(w, (list, dict)) for w in items):
            problem(where, f"expected a word or a list of words, got {value!r:.80}")
            continue
        if not isinstance(nodes, list) or len(nodes) != len(items):
            nodes = [None] * len(items)
        texts = [_scalar_text(problem, where, n, w) for n, w in zip(nodes, items, strict=True)]
        if label is not _FAILED and all(t is not _FAILED for t in texts):
            label_words[label] = texts
            for text, word_node in zip(texts, nodes, strict=True):
                if word_node is not None:
                    word_lines[(label, text)] = word_node.start_mark.line + 1
        else:
            typed = True
    if task is not None and not typed:
        for label, message in label_word_problems(task, label_words):
            problem((*key, "label_words", *([label] if label is not None else [])), message)
    return PromptSpec(name, template, label_words, str(spec.get("reference", "")), verbalizer, word_lines)


def label_word_problems(task: Task, label_words: dict[str, list[str]]) -> list[tuple[str | None, str]]:
    """(label the problem is under, or None; message) for every problem of a task's label words as
    text: the one check of :func:`prompts.verbalizer.label_word_problems`."""
    return verbalizer_problems(task.labels, label_words)


def load_task_file(path: str | os.PathLike) -> TaskFile:
    """Read a task file.

    Raises:
        TaskFileError: the first problem found (``lmbff templates lint`` lists them all).
    """
    parsed, errors = parse_task_file(path)
    if errors:
        raise errors[0]
    assert parsed is not None
    return parsed
