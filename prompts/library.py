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

This module is the library's public face; each idea lives in its own module:

- :mod:`prompts.task`: the task model (``Task``, ``PromptSpec``, ``TaskFile``, ``TaskFileError``);
- :mod:`prompts.yaml_strict`: the strict YAML layer (core schema, duplicate keys, line numbers);
- :mod:`prompts.task_schema`: validating a task file, every problem located;
- :mod:`prompts.discovery`: finding task files by name or path;
- :mod:`prompts.from_labels`: a task built from labels, without a YAML file.
"""

from __future__ import annotations

from .discovery import (
    TEMPLATES_ENV,
    bundled_templates_dir,
    find_task_file,
    iter_task_files,
    load_task,
    template_dirs,
)
from .from_labels import label_word_from_name, task_file_from_labels, template_fields_in_order
from .task import METRICS, PromptSpec, Task, TaskFile, TaskFileError, TaskType
from .task_schema import label_word_problems, load_task_file, parse_task_file, parse_task_text
from .yaml_strict import (
    TASK_FILE_CHARS_ENV,
    CoreSchemaLoader,
    YamlLines,
    max_task_file_chars,
    strict_yaml,
)

__all__ = [
    "METRICS",
    "TASK_FILE_CHARS_ENV",
    "TEMPLATES_ENV",
    "CoreSchemaLoader",
    "PromptSpec",
    "Task",
    "TaskFile",
    "TaskFileError",
    "TaskType",
    "YamlLines",
    "bundled_templates_dir",
    "find_task_file",
    "iter_task_files",
    "label_word_from_name",
    "label_word_problems",
    "load_task",
    "load_task_file",
    "max_task_file_chars",
    "parse_task_file",
    "parse_task_text",
    "strict_yaml",
    "task_file_from_labels",
    "template_dirs",
    "template_fields_in_order",
]
