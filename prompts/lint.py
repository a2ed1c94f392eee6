"""Template linting: every problem a task file can have, located by file, template and line.

Checks: the YAML and its schema; each template parses in the sandbox, reads only declared fields, has
exactly one mask slot and renders; every label has words, words are distinct across labels; and with a
tokenizer, every label word tokenizes (no unknown token), with its token count (multi-token words work
but cost one mask or one scored position per token; a masked LM gets a warning).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .library import PromptSpec, Task, TaskFile, TaskFileError, parse_task_file, parse_task_text, strict_yaml
from .template import MASK, TemplateError
from .tokenization import ModelKind, TokenizerAdapter
from .verbalizer import Verbalizer

Severity = Literal["error", "warning", "info"]


@dataclass(frozen=True)
class LintIssue:
    severity: Severity
    file: str
    line: int | None
    template: str | None
    message: str
    suggestion: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        what = f" template '{self.template}':" if self.template else ""
        hint = f" ({self.suggestion})" if self.suggestion else ""
        return f"{where}: {self.severity}:{what} {self.message}{hint}"


@dataclass(frozen=True)
class WordReport:
    """How a label word tokenizes for the tokenizer lint was given."""

    file: str
    template: str
    label: str
    word: str
    tokens: list[str]


def _sample_fields(task: Task) -> dict[str, str]:
    return {name: f"Sample {name} text." for name in task.fields}


def _lint_prompt(task_file: TaskFile, spec: PromptSpec, issues: list[LintIssue]) -> None:
    task, template, file = task_file.task, spec.template, task_file.path

    def issue(
        severity: Severity, message: str, line: int | None = None, suggestion: str | None = None
    ) -> None:
        file_line = (
            template.location.line + line - 1 if (line and template.location.line) else template.location.line
        )
        issues.append(LintIssue(severity, file, file_line, spec.name, message, suggestion))

    undeclared = sorted(template.fields - set(task.fields))
    for name in undeclared:
        issue(
            "error",
            f"reads field '{name}', which the task does not declare",
            template.line_of(name),
            f"declared fields: {', '.join(task.fields)}; use one of them or add it to task.fields",
        )
    if MASK not in template.variables:
        issue("error", "has no mask slot", None, "write {{ mask }} where the label word goes")
    unused = set(task.fields) - template.fields
    if unused:
        issue("info", f"does not read the task field(s) {sorted(unused)}")
    if not undeclared and MASK in template.variables:  # else rendering fails again: report it once
        try:
            template.render_parts(_sample_fields(task))
        except TemplateError as exc:
            issues.append(LintIssue("error", file, exc.file_line, spec.name, exc.message))
    for label, words in spec.label_words.items():
        for word in words:
            line = spec.word_lines.get((label, word), template.location.line)
            warnings = []
            if word.strip() and word.strip() != word:
                warnings.append(
                    (
                        f"label word {word!r} of label {label!r} has surrounding spaces",
                        "spaces are added by the toolkit where the slot needs them",
                    )
                )
            if word.strip() and not word.strip().replace("-", "").isalnum():
                warnings.append(
                    (
                        f"label word {word!r} of label {label!r} has characters other than letters and "
                        "digits; it likely splits into several tokens",
                        "check its token count with --model, or choose a plain word",
                    )
                )
            issues += [LintIssue("warning", file, line, spec.name, m, hint) for m, hint in warnings]
    # Words two labels share, empty or invisible words: checked when the file is parsed (the one
    # check of prompts.verbalizer.label_word_problems), so a file with them never gets here.


def _lint_words(
    task_file: TaskFile,
    spec: PromptSpec,
    adapter: TokenizerAdapter,
    issues: list[LintIssue],
    words_out: list[WordReport],
) -> None:
    from .encoding import PromptEncoder

    try:
        after_space = PromptEncoder(spec.template, adapter).slot_after_space
    except TemplateError:
        return  # already reported
    try:
        verbalizer = Verbalizer(spec.label_words, task_file.task.labels)
    except ValueError:
        return  # the words' text problems are reported where the words were read
    refused = {
        (label, word): message for label, word, message in verbalizer.token_problems(adapter, after_space)
    }
    for label, words in spec.label_words.items():
        for word in words:
            ids = adapter.word_ids(word.strip(), after_space)
            tokens = adapter.describe(ids)
            words_out.append(WordReport(task_file.path, spec.name, label, word, tokens))
            line = spec.word_lines.get((label, word), spec.template.location.line)
            message = refused.get((label, word.strip()))
            if message is not None:
                issues.append(
                    LintIssue(
                        "error",
                        task_file.path,
                        line,
                        spec.name,
                        f"{message}: {tokens}",
                        "choose a word in the model's vocabulary, as text, that no other label's word "
                        "encodes to",
                    )
                )
            elif len(ids) > 1:
                how = (
                    "it is scored with one mask per token"
                    if adapter.kind == "masked"
                    else "it is scored as a continuation of that many tokens, off the one-position fast path"
                )
                issues.append(
                    LintIssue(
                        "warning",
                        task_file.path,
                        line,
                        spec.name,
                        f"label word {word!r} (label {label!r}) splits into {len(ids)} tokens "
                        f"{tokens}; {how}",
                        "a single-token word keeps LM-BFF's one-token setting and scores fastest",
                    )
                )


def lint_file(
    path: str | os.PathLike, tokenizer=None, kind: ModelKind = "masked"
) -> tuple[list[LintIssue], list[WordReport]]:
    """Lint one file the library reads: a task file (with a tokenizer, also how every label word
    tokenizes) or an event-prompts file (``templates/events.yaml``: its three sandboxed prompts)."""
    if _is_event_prompts(path):
        return _lint_event_prompts(path), []
    return _lint_parsed(*parse_task_file(path), tokenizer, kind)


def _is_event_prompts(path: str | os.PathLike) -> bool:
    """An event-prompts file: a mapping of the event prompt names, and no task block."""
    from .event_prompts import FIELDS

    try:
        _, data = strict_yaml(Path(path).read_text(encoding="utf-8"), str(path))
    except (OSError, UnicodeDecodeError, TaskFileError):
        return False  # reported by the task-file path
    return isinstance(data, dict) and "task" not in data and bool(set(data) & set(FIELDS))


def _lint_event_prompts(path: str | os.PathLike) -> list[LintIssue]:
    from .event_prompts import load_event_prompts

    try:
        load_event_prompts(path)
    except TemplateError as exc:
        return [LintIssue("error", str(path), exc.file_line, exc.template, exc.message)]
    except TaskFileError as exc:
        return [LintIssue("error", exc.file, exc.line, None, exc.message, exc.suggestion)]
    return []


def lint_text(
    text: str, file: str, tokenizer=None, kind: ModelKind = "masked"
) -> tuple[list[LintIssue], list[WordReport]]:
    """Lint the text of a task file before it is written (``file`` names it in the issues)."""
    return _lint_parsed(*parse_task_text(text, file), tokenizer, kind)


def lint_prompt(
    task_file: TaskFile, spec: PromptSpec, tokenizer=None, kind: ModelKind = "masked"
) -> tuple[list[LintIssue], list[WordReport]]:
    """Lint one template of a parsed task file (e.g. a draft held in memory, not yet in the file)."""
    return _lint_spec(task_file, spec, TokenizerAdapter(tokenizer, kind) if tokenizer is not None else None)


def _lint_spec(
    task_file: TaskFile, spec: PromptSpec, adapter: TokenizerAdapter | None
) -> tuple[list[LintIssue], list[WordReport]]:
    issues: list[LintIssue] = []
    words: list[WordReport] = []
    _lint_prompt(task_file, spec, issues)
    if adapter is not None:
        _lint_words(task_file, spec, adapter, issues, words)
    return issues, words


def _lint_parsed(
    parsed: TaskFile | None, errors: list[TaskFileError], tokenizer, kind: ModelKind
) -> tuple[list[LintIssue], list[WordReport]]:
    issues = [
        LintIssue(
            "error",
            e.file,
            e.line,
            _template_of(e.key),
            f"{e.key}: {e.message}" if e.key else e.message,
            e.suggestion,
        )
        for e in errors
    ]
    words: list[WordReport] = []
    if parsed is None:
        return issues, words
    adapter = TokenizerAdapter(tokenizer, kind) if tokenizer is not None else None  # once per file
    for spec in parsed.prompts.values():
        found, reports = _lint_spec(parsed, spec, adapter)
        issues += found
        words += reports
    return issues, words


def _template_of(key: str) -> str | None:
    parts = key.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "templates" else None
