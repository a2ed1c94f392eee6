"""``lmbff templates new``: a commented task file to start from, valid as written."""

from __future__ import annotations

import json
from collections.abc import Sequence

from .errors import ConfigError
from .library import METRICS


def scaffold_task_file(
    name: str, fields: Sequence[str], labels: Sequence[str], metric: str = "accuracy"
) -> str:
    """The text of a new task file. Raises ValueError for an empty or repeated field or label, or an
    unknown metric."""
    for kind, values in (("field", fields), ("label", labels)):
        if not values or any(not v.strip() for v in values):
            raise ConfigError(f"give at least one non-empty {kind}")
        if len(set(values)) != len(values):
            raise ConfigError(f"a {kind} is repeated: {list(values)}")
    if not all(f.isidentifier() for f in fields):
        raise ConfigError(f"fields must be identifiers (letters, digits, _), got {list(fields)}")
    if metric not in METRICS:
        raise ConfigError(f"unknown metric {metric!r}; one of {', '.join(METRICS)}")
    q = json.dumps  # YAML accepts JSON strings: safe quoting for any label or name
    slots = " ".join("{{ " + f + " }}" for f in fields)
    words = "\n".join(
        f"      {q(label)}: {q(label.lower())}  # a word the model reads for this label" for label in labels
    )
    return f"""# {name} — describe the task and cite its data here.
# Check it with: lmbff templates lint <this file> --model <model>
# See it on real examples: lmbff templates preview --task <this file> --data-dir <data> --model <model>
task:
  name: {q(name)}
  description: {q("what the task is")}
  fields: [{", ".join(fields)}]  # the columns of the data files the templates read
  labels: [{", ".join(q(label) for label in labels)}]
  metric: {metric}  # one of: {", ".join(METRICS)}
default_template: first
templates:
  first:
    # Jinja: the fields as {{{{ name }}}}, and {{{{ mask }}}} exactly once, where the label word goes.
    # Filters: strip_final_punct, lower_first, upper_first. Rendered in a sandbox.
    text: {q(slots + " It was {{ mask }}.")}
    label_words:  # one word (or a list of words) per label; single-token words score fastest
{words}
    reference: {q("where this template comes from")}
"""


def scaffold_from_labels(
    name: str,
    labels: Sequence[str],
    template: str,
    metric: str | None = "accuracy",
    label_words: Sequence[str] | None = None,
    *,
    multi_label: bool = False,
    label_delimiter: str = ",",
) -> str:
    """A task file whose fields are the template's and whose label words are ``label_words`` (in label
    order), or the label names as words (``credit_limit_change`` -> ``credit limit change``): the YAML
    twin of ``lmbff zero-shot --labels``. Raises TaskFileError or TemplateError as
    :func:`prompts.library.task_file_from_labels` does. A ``multi_label`` task (several labels per
    example, split on ``label_delimiter`` in TSV and CSV files) is scored by micro_f1 unless ``metric``
    says otherwise."""
    from .library import task_file_from_labels

    q = json.dumps

    task_file = task_file_from_labels(
        list(labels),
        template,
        list(label_words) if label_words is not None else None,
        name=name,
        metric=metric if not (multi_label and metric == "accuracy") else None,
        multi_label=multi_label,
    )
    metric = task_file.task.metric
    fields = list(task_file.task.fields)
    text = scaffold_task_file(name, fields, list(task_file.task.labels), "accuracy")
    metric_line = text[text.index("  metric: accuracy") : text.index("\n", text.index("  metric: accuracy"))]
    declared = f"  metric: {metric}  # one of: {', '.join(METRICS)}"
    if multi_label:
        declared += (
            "\n  multi_label: true  # several labels per example"
            f"\n  label_delimiter: {q(label_delimiter)}  # between the labels of a TSV or CSV row"
        )
    text = text.replace(metric_line, declared, 1)
    default_slots = q(" ".join("{{ " + f + " }}" for f in fields) + " It was {{ mask }}.")
    text = text.replace(f"text: {default_slots}", f"text: {q(template)}", 1)
    words = task_file.prompt().label_words
    for label in task_file.task.labels:
        text = text.replace(f"{q(label)}: {q(label.lower())}", f"{q(label)}: {q(words[label][0])}", 1)
    return text
