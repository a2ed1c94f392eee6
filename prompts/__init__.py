"""The prompt layer: sandboxed cloze templates, verbalizers, safe truncation, the template library."""

from .encoding import PromptEncoder, PromptEncoding, PromptTooLong
from .library import PromptSpec, Task, TaskFile, TaskFileError, find_task_file, load_task, load_task_file
from .template import MASK, Template, TemplateError, TemplateLocation
from .tokenization import TokenizerAdapter
from .verbalizer import TokenizedVerbalizer, Verbalizer

__all__ = [
    "MASK",
    "PromptEncoder",
    "PromptEncoding",
    "PromptSpec",
    "PromptTooLong",
    "Task",
    "TaskFile",
    "TaskFileError",
    "Template",
    "TemplateError",
    "TemplateLocation",
    "TokenizedVerbalizer",
    "TokenizerAdapter",
    "Verbalizer",
    "find_task_file",
    "load_task",
    "load_task_file",
]
