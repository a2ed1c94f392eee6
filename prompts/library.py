"""The template library: one YAML file per task (task block, named templates, label words).

A file looks like::

    task:
      name: SST-2
      fields: [text_a]
      labels: ["0", "1"]
      metric: accuracy
    default_template: lmbff
    templates:
      lmbff:
        text: "{{ text_a }} It was {{ mask }}."
        label_words: {"0": terrible, "1": great}

Every problem is reported with the file, the line and the key path (``templates.lmbff.text``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml

from .errors import ConfigError, LmbffError
from .template import DEFAULT_BUDGET, RenderBudget, Template, TemplateError, TemplateLocation
from .verbalizer import VERBALIZERS, Verbalizer
from .verbalizer import label_word_problems as verbalizer_problems

METRICS = ("accuracy", "f1", "macro_f1", "mcc", "pearson", "spearman")
TaskType = Literal["classification", "regression"]
TEMPLATES_ENV = "LMBFF_TEMPLATES"


class TaskFileError(LmbffError, ValueError):
    """A problem in a task file, located by file, line and key path."""

    def __init__(self, file: str, line: int | None, key: str, message: str, suggestion: str | None = None):
        self.file, self.line, self.key, self.message, self.suggestion = file, line, key, message, suggestion
        where = f"{file}:{line}" if line else file
        text = f"{where}: {key}: {message}" if key else f"{where}: {message}"
        super().__init__(text + (f" ({suggestion})" if suggestion else ""))


@dataclass(frozen=True)
class Task:
    """What a task is: its fields, labels, metric, and how its inputs may be truncated."""

    name: str
    fields: tuple[str, ...]
    labels: tuple[str, ...]
    metric: str = "accuracy"
    type: TaskType = "classification"
    description: str = ""
    positive_label: str | None = None
    value_range: tuple[float, float] | None = None
    split_threshold: float | None = None
    field_limits: dict[str, int] = field(default_factory=dict)
    truncate_side: dict[str, str] = field(default_factory=dict)
    label_names: dict[str, str] = field(default_factory=dict)

    @property
    def is_regression(self) -> bool:
        return self.type == "regression"

    def to_dict(self) -> dict:
        """Everything that defines the task, as JSON (what a saved state carries instead of the YAML)."""
        return {
            "name": self.name,
            "fields": list(self.fields),
            "labels": list(self.labels),
            "metric": self.metric,
            "type": self.type,
            "description": self.description,
            "positive_label": self.positive_label,
            "value_range": list(self.value_range) if self.value_range is not None else None,
            "split_threshold": self.split_threshold,
            "field_limits": dict(self.field_limits),
            "truncate_side": dict(self.truncate_side),
            "label_names": dict(self.label_names),
        }

    @classmethod
    def from_dict(cls, data: dict) -> Task:
        values = dict(data)
        values["fields"] = tuple(values["fields"])
        values["labels"] = tuple(values["labels"])
        if values.get("value_range") is not None:
            values["value_range"] = tuple(float(v) for v in values["value_range"])
        return cls(**values)

    def group_label(self, label: str | float) -> str:
        """The class an example counts as: its label, or for regression its pole (LM-BFF: a score
        below ``split_threshold``, default the middle of the range, is the low pole)."""
        if not self.is_regression:
            return str(label)
        low, high = self.value_range
        threshold = self.split_threshold if self.split_threshold is not None else (low + high) / 2
        return self.labels[0] if float(label) < threshold else self.labels[1]


@dataclass(frozen=True)
class PromptSpec:
    """A named template with its label words, as written in a task file."""

    name: str
    template: Template
    label_words: dict[str, list[str]]
    reference: str = ""
    # words, prototype or words+prototype (prompts.verbalizer.VERBALIZERS)
    verbalizer_kind: str = "words"
    # (label, word) -> the file line the word is written on, for lint messages about one word.
    word_lines: dict[tuple[str, str], int] = field(default_factory=dict, compare=False, repr=False)

    def verbalizer(self, task: Task) -> Verbalizer:
        return Verbalizer(self.label_words, task.labels)


@dataclass(frozen=True)
class TaskFile:
    path: str
    task: Task
    prompts: dict[str, PromptSpec]
    default_template: str

    def __repr__(self) -> str:
        # Short, as scikit-learn shows an estimator's parameters: the task's name, labels and templates,
        # not every compiled template and label word (several screens for a task built from labels).
        labels = list(self.task.labels)
        shown = ", ".join(map(repr, labels[:5])) + (
            f", ... ({len(labels)} labels)" if len(labels) > 5 else ""
        )
        return f"TaskFile({self.task.name!r}, labels=[{shown}], templates={sorted(self.prompts)})"

    def __deepcopy__(self, memo) -> TaskFile:
        # Immutable once parsed (its compiled templates cannot be deep-copied anyway): scikit-learn's
        # clone() deep-copies parameters, and a task file passed as one is shared, not copied.
        return self

    def prompt(self, name: str | None = None) -> PromptSpec:
        """The named template (the file's default when ``name`` is None).

        Raises:
            ConfigError: no template has that name; the message lists those that exist.
        """
        key = name or self.default_template
        if key not in self.prompts:
            raise ConfigError(f"{self.path}: no template named {key!r}; the file has {sorted(self.prompts)}")
        return self.prompts[key]


class YamlLines:
    """Line numbers of the keys of a YAML document, looked up by key path."""

    def __init__(self, node: yaml.Node | None):
        self.node = node

    def _pair(self, *path: str) -> tuple[yaml.Node | None, yaml.Node | None]:
        key_node, node = None, self.node
        for key in path:
            if not isinstance(node, yaml.MappingNode):
                return None, None
            key_node, node = next(
                ((k, v) for k, v in node.value if getattr(k, "value", None) == key), (None, None)
            )
        return key_node, node

    def node_at(self, *path: str) -> yaml.Node | None:
        return self._pair(*path)[1]

    def line(self, *path: str) -> int | None:
        """The line where the deepest existing key of ``path`` is written."""
        while path:
            key_node, _ = self._pair(*path)
            if key_node is not None:
                return key_node.start_mark.line + 1
            path = path[:-1]
        return 1

    def text_start(self, *path: str) -> int | None:
        """The file line on which a scalar's text begins (block scalars start on the next line)."""
        node = self.node_at(*path)
        if node is None:
            return None
        style = getattr(node, "style", None)
        return node.start_mark.line + (2 if style in ("|", ">") else 1)


_MAX_YAML_VALUES = 200_000
TASK_FILE_CHARS_ENV = "LMBFF_MAX_TASK_FILE_CHARS"
_TASK_FILE_CHARS = 5_000_000


def max_task_file_chars() -> int:
    """The hard ceiling on a task file's size and on the characters its aliases expand to: 5,000,000
    unless the operator lifts it with ``$LMBFF_MAX_TASK_FILE_CHARS`` (a task file cannot)."""
    return _ceiling_from_env(TASK_FILE_CHARS_ENV, _TASK_FILE_CHARS, int)


def _ceiling_from_env(name: str, default, kind):
    text = os.environ.get(name)
    if not text:
        return default
    try:
        value = kind(text)
    except ValueError:
        raise ConfigError(f"${name}={text!r}: expected a positive number") from None
    if not value > 0:
        raise ConfigError(f"${name}={text!r}: expected a positive number")
    return value


class CoreSchemaLoader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2's core schema instead of YAML 1.1's implicit types.

    Why: under 1.1 a label word ``Yes`` becomes the boolean True (then the text "True"), ``010`` the
    octal 8 and ``1:30`` the sexagesimal 90, without a word. Under the 1.2 core schema only
    ``true``/``false``, ``null``/``~``, decimal (and 0o/0x) integers and floats are typed; ``yes``,
    ``on``, ``010``-as-octal, ``1:30`` and dates stay text. PyYAML keeps the node tree with line numbers
    that every located error here is built on, so the schema is changed rather than the library."""

    yaml_implicit_resolvers: ClassVar[dict] = {}


for _tag, _pattern, _first in (
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    (
        "float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+0123456789.",
    ),
):
    CoreSchemaLoader.add_implicit_resolver(f"tag:yaml.org,2002:{_tag}", re.compile(_pattern), list(_first))
CoreSchemaLoader.add_implicit_resolver("tag:yaml.org,2002:merge", re.compile(r"^(?:<<)$"), ["<"])


def _construct_core_int(loader, node) -> int:
    text = loader.construct_scalar(node)
    if text.startswith(("0o", "0x")):
        return int(text, 0)
    return int(text, 10)  # 1.1 read a leading 0 as octal: 010 was 8


CoreSchemaLoader.add_constructor("tag:yaml.org,2002:int", _construct_core_int)


def _duplicate_keys(node, file: str) -> TaskFileError | None:
    """The first key written twice in one mapping, anywhere in the document (PyYAML keeps the last
    silently, so a second template of the same name would replace the first without a word), or a
    document whose aliases expand it past a bound in values or in characters."""
    stack = [node]
    expanded = 0
    characters = 0
    limit = max_task_file_chars()
    while stack:
        current = stack.pop()
        expanded += 1
        if isinstance(current, yaml.ScalarNode):
            characters += len(current.value)
        if expanded > _MAX_YAML_VALUES or characters > limit:  # aliases (*name) make a few lines stand
            what = (  # for billions of values or characters
                f"more than {_MAX_YAML_VALUES:,} values"
                if expanded > _MAX_YAML_VALUES
                else f"more than {limit:,} characters (${TASK_FILE_CHARS_ENV})"
            )
            return TaskFileError(
                file,
                current.start_mark.line + 1,
                "",
                f"the document stands for {what} (through YAML aliases?)",
                "write the values out, or split the file",
            )
        if isinstance(current, yaml.MappingNode):
            seen: dict = {}
            for key, value in current.value:
                name = key.value if isinstance(key, yaml.ScalarNode) else None  # ({} as a key: no name)
                if isinstance(name, str) and name in seen:
                    return TaskFileError(
                        file,
                        key.start_mark.line + 1,
                        name,
                        f"duplicate key (first written on line {seen[name]}); the second would silently "
                        "replace the first",
                        "rename or remove one of them",
                    )
                if name is not None:
                    seen[name] = key.start_mark.line + 1
                stack.extend((key, value))
        elif isinstance(current, yaml.SequenceNode):
            stack.extend(current.value)
    return None


def strict_yaml(text: str, file: str):
    """(node tree, data) of a YAML document: safe loading with YAML 1.2's core schema
    (:class:`CoreSchemaLoader`), one document, no duplicate keys, within the size ceiling.

    Raises:
        TaskFileError: invalid YAML, a duplicated key or a document over the ceiling, with the file and
            line.
    """
    limit = max_task_file_chars()
    if len(text) > limit:  # parsing tens of megabytes takes minutes: refuse before reading
        raise TaskFileError(
            file,
            None,
            "",
            f"{len(text):,} characters, over the ceiling of {limit:,} for a task file",
            f"split the file, or lift the ceiling with ${TASK_FILE_CHARS_ENV}",
        )
    try:
        node = yaml.compose(text, Loader=CoreSchemaLoader)
        duplicate = _duplicate_keys(node, file)
        if duplicate is not None:
            raise duplicate
        data = yaml.load(text, Loader=CoreSchemaLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise TaskFileError(file, mark.line + 1 if mark else None, "", f"invalid YAML: {exc}") from None
    except RecursionError:
        raise TaskFileError(file, None, "", "invalid YAML: nested too deeply") from None
    return node, data


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


def _parse_task(data: dict, problem: _Problems) -> Task | None:
    ok = True
    allowed = {
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
    }
    for key in data:
        if key not in allowed:
            problem(("task", str(key)), "unknown key", f"expected one of {sorted(allowed)}")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        problem(("task", "name"), "missing task name")
        ok = False
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
    metric = data.get("metric", "accuracy")
    if metric not in METRICS:
        problem(("task", "metric"), f"unknown metric {metric!r}", f"one of {', '.join(METRICS)}")
        ok = False
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
    positive = data.get("positive_label")
    if positive is not None:
        positive = _scalar_text(
            problem, ("task", "positive_label"), problem.lines.node_at("task", "positive_label"), positive
        )
        ok = ok and positive is not _FAILED
    if positive is not None and positive is not _FAILED and labels is not None and positive not in labels:
        problem(("task", "positive_label"), f"{positive!r} is not one of the labels {labels}")
        ok = False
    limits = data.get("field_limits") or {}
    sides = data.get("truncate_side") or {}
    for key, mapping in (("field_limits", limits), ("truncate_side", sides)):
        if not isinstance(mapping, dict):
            problem(("task", key), "expected a mapping from field name to a value")
            ok = False
            continue
        for fname, value in mapping.items():
            if fields is not None and fname not in fields:
                problem(("task", key, str(fname)), f"not a field of the task {fields}")
                ok = False
            if key == "field_limits" and (not isinstance(value, int) or value < 1):
                problem(("task", key, str(fname)), f"expected a positive token count, got {value!r}")
                ok = False
            if key == "truncate_side" and value not in ("start", "end"):
                problem(("task", key, str(fname)), f"expected start or end, got {value!r}")
                ok = False
    names: dict[str, str] = {}
    raw_names = data.get("label_names") or {}
    if not isinstance(raw_names, dict):
        problem(("task", "label_names"), "expected a mapping from each label to its display name")
        ok = False
    else:
        for name, value, node in _text_mapping(problem, ("task", "label_names"), raw_names):
            text = _scalar_text(problem, ("task", "label_names", str(name)), node, value)
            if name is _FAILED or text is _FAILED:
                ok = False
            else:
                names[name] = text
    if not ok:
        return None
    return Task(
        name=name.strip(),
        fields=tuple(fields),
        labels=tuple(labels),
        metric=metric,
        type=task_type,
        description=str(data.get("description", "")),
        positive_label=positive,
        value_range=tuple(float(v) for v in value_range) if task_type == "regression" else None,
        split_threshold=float(data["split_threshold"]) if data.get("split_threshold") is not None else None,
        field_limits=dict(limits) if isinstance(limits, dict) else {},
        truncate_side=dict(sides) if isinstance(sides, dict) else {},
        label_names=names,
    )


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


def bundled_templates_dir() -> Path:
    """The template library shipped with the toolkit (inside a wheel, or the repository's templates/)."""
    inside = Path(__file__).resolve().parent / "_bundled" / "templates"
    return inside if inside.is_dir() else Path(__file__).resolve().parent.parent / "templates"


def template_dirs(extra: list[str | os.PathLike] | None = None) -> list[Path]:
    """Where task files are looked up: ``extra``, then $LMBFF_TEMPLATES, then ``./templates`` (where
    ``lmbff templates new`` writes), then the bundled library."""
    dirs = [Path(p) for p in (extra or [])]
    dirs += [Path(p) for p in os.environ.get(TEMPLATES_ENV, "").split(os.pathsep) if p]
    dirs.append(Path.cwd() / "templates")
    dirs.append(bundled_templates_dir())
    return dirs


def iter_task_files(dirs: list[Path] | None = None) -> Iterator[Path]:
    seen: set[Path] = set()
    for directory in dirs or template_dirs():
        if directory.is_dir() and directory.resolve() not in seen:
            seen.add(directory.resolve())
            yield from sorted(p for p in directory.glob("*.yaml") if p.stem != "events")


def find_task_file(name_or_path: str, dirs: list[Path] | None = None) -> Path:
    """The task file for a task name (case-insensitive) or a path to a YAML file.

    Raises:
        FileNotFoundError: no file matches; the message lists the known tasks.
    """
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") and candidate.is_file():
        return candidate
    wanted = name_or_path.lower()
    seen = []
    for path in iter_task_files(dirs):
        seen.append(path.stem)
        if path.stem.lower() == wanted:
            return path
    raise FileNotFoundError(
        f"no task file for {name_or_path!r}; known tasks: {', '.join(sorted(set(seen)))}. "
        f"Add templates/<task>.yaml, point ${TEMPLATES_ENV} at a folder of task files, or pass a .yaml path."
    )


def load_task(name_or_path: str, dirs: list[Path] | None = None) -> TaskFile:
    """Find and read a task file by task name or path."""
    return load_task_file(find_task_file(name_or_path, dirs))


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
    metric: str = "accuracy",
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
    if metric not in METRICS:
        raise fail("metric", f"unknown metric {metric!r}", f"one of {', '.join(METRICS)}")
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
    task = Task(name=name, fields=fields, labels=tuple(names), metric=metric)
    problems = label_word_problems(task, words)
    if problems:
        raise fail("label_words", "; ".join(message for _, message in problems))
    prompt = PromptSpec(name, compiled, words)
    return TaskFile(where, task, {name: prompt}, name)
