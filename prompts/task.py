"""The task model: a task (fields, labels, metric, truncation rules), its prompts (template, label
words, verbalizer) and the task file that holds them, with the error that locates a problem in one."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from .errors import ConfigError, LmbffError
from .template import Template
from .verbalizer import Verbalizer

METRICS = ("accuracy", "f1", "macro_f1", "mcc", "pearson", "spearman", "micro_f1", "subset_accuracy")
# What a multi-label task may be scored and selected by. Hamming loss is reported for every multi-label
# run but is no task metric: lower is better, and the task's metric chooses checkpoints and thresholds.
MULTI_LABEL_METRICS = ("micro_f1", "macro_f1", "subset_accuracy")
SINGLE_LABEL_METRICS = tuple(m for m in METRICS if m not in ("micro_f1", "subset_accuracy"))
TaskType = Literal["classification", "regression"]


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
    # Several labels per example (lmbff.multi_label): each decided on its own. In TSV and CSV files the
    # labels of a row are one field split on ``label_delimiter``; in JSON lines a list. ``allow_empty``:
    # a row may have no label at all (else an empty list is an error).
    multi_label: bool = False
    label_delimiter: str | None = None
    allow_empty: bool = False

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
            "multi_label": self.multi_label,
            "label_delimiter": self.label_delimiter,
            "allow_empty": self.allow_empty,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Task:
        values = dict(data)
        values["fields"] = tuple(values["fields"])
        values["labels"] = tuple(values["labels"])
        if values.get("value_range") is not None:
            values["value_range"] = tuple(float(v) for v in values["value_range"])
        return cls(**values)

    def group_label(self, label: str | float | tuple[str, ...]) -> str:
        """The class an example counts as: its label, or for regression its pole (LM-BFF: a score
        below ``split_threshold``, default the middle of the range, is the low pole); for a multi-label
        example its first label (what a demonstration shows, what starts a prototype)."""
        if self.multi_label and isinstance(label, (tuple, list)):
            return str(label[0]) if label else ""
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
