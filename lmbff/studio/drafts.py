"""A template being typed in the studio: checked by the same sandbox and lint as the command line.

The draft's template is given the location ``<editor>`` line 1, so every line an issue names is a line
of the editor, not of a YAML file.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from prompts.library import PromptSpec, TaskFile, label_word_problems
from prompts.lint import LintIssue, lint_prompt
from prompts.template import Template, TemplateError, TemplateLocation

from ..model import PromptModel

EDITOR = "<editor>"
MAX_TEMPLATE_CHARS = 10_000


@dataclass
class Draft:
    """A task file's task with one template from the page, and what lint found in it."""

    task_file: TaskFile
    spec: PromptSpec | None  # None when the template does not compile
    issues: list[LintIssue]

    @property
    def ok(self) -> bool:
        return self.spec is not None and not any(i.severity == "error" for i in self.issues)

    def issue_dicts(self) -> list[dict]:
        return [
            {
                "severity": i.severity,
                "line": i.line,
                "message": i.message,
                "suggestion": i.suggestion,
            }
            for i in self.issues
        ]


def make_draft(
    task_file: TaskFile,
    name: str,
    text: str,
    label_words: dict[str, list[str]],
    tokenizer=None,
    kind: str = "masked",
) -> Draft:
    """Compile and lint a template and its label words against a task (nothing is raised)."""
    if len(text) > MAX_TEMPLATE_CHARS:
        issue = LintIssue(
            "error", EDITOR, None, name, f"the template is over {MAX_TEMPLATE_CHARS} characters"
        )
        return Draft(task_file, None, [issue])
    issues = _label_issues(task_file, name, label_words)
    try:
        template = Template(text, name=name, location=TemplateLocation(EDITOR, 1))
    except TemplateError as exc:
        return Draft(task_file, None, [*issues, LintIssue("error", EDITOR, exc.file_line, name, exc.message)])
    spec = PromptSpec(name, template, label_words)
    editor_file = replace(task_file, path=EDITOR)
    found, _ = lint_prompt(editor_file, spec, tokenizer, kind)  # type: ignore[arg-type]
    return Draft(task_file, spec, issues + found)


def _label_issues(task_file: TaskFile, name: str, label_words: dict[str, list[str]]) -> list[LintIssue]:
    return [
        LintIssue("error", EDITOR, None, name, message)
        for _, message in label_word_problems(task_file.task, label_words)
    ]


def scorer_for(draft: Draft, lm, tokenizer, kind: str, max_length: int) -> PromptModel:
    """A PromptModel over the shared model for a draft that lints clean.

    Raises:
        TemplateError: the draft does not compile, or an example cannot be encoded (e.g. too long).
        ValueError: a label word is unknown to the tokenizer.
    """
    assert draft.spec is not None
    return PromptModel.for_task(
        lm, tokenizer, draft.task_file.task, draft.spec, kind=kind, max_length=max_length
    )
