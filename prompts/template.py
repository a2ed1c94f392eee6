"""Cloze templates: Jinja text with one named mask slot, rendered in a sandbox.

A template is user content, so it is compiled and rendered by ``jinja2.sandbox.SandboxedEnvironment``
with ``StrictUndefined``: a field the example lacks, a syntax error or an attempt to reach Python
internals is a :class:`TemplateError` naming the file, the template and the line.

The mask slot is the variable ``mask`` (``{{ mask }}``). Rendering puts a private sentinel there and
splits the text around it, so the caller gets the text before and after the slot and decides what the
slot becomes (mask tokens, a label word, or nothing for a causal prefix).
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping
from dataclasses import dataclass

import jinja2
from jinja2 import meta

from .errors import LmbffError
from .sandbox import (
    DEFAULT_BUDGET,
    METER,
    BudgetExceeded,
    Meter,
    RenderBudget,
    environment,
    instrument,
)

MASK = "mask"
# A private-use character sequence: cannot occur in real text, survives every string filter except
# those that change case (lint reports a slot that did not survive).
_SENTINEL = "\ue000\ue001slot\ue001\ue000"
_JINJA_FILENAME = "<template>"


def _slot_marker(fields: Mapping[str, object]) -> str:
    """The slot's marker for one render: the private sentinel, or a numbered variant of it when a field
    already holds it (data is data: a row that contains the marker must not split the prompt)."""
    values = [v for v in fields.values() if isinstance(v, str)]
    marker, number = _SENTINEL, 0
    while any(marker in value for value in values):
        number += 1
        marker = f"\ue000\ue001slot{number}\ue001\ue000"
    return marker


@dataclass(frozen=True)
class TemplateLocation:
    """Where a template's text stands: a file and the line its text starts on (1-based)."""

    file: str | None = None
    line: int | None = None


class TemplateError(LmbffError, ValueError):
    """A template that cannot be compiled or rendered; ``str()`` names file, template and line."""

    def __init__(self, message: str, *, template: str, location: TemplateLocation, line: int | None = None):
        self.message = message
        self.template = template
        self.location = location
        self.template_line = line  # line inside the template text, 1-based
        super().__init__(self._format())

    @property
    def file_line(self) -> int | None:
        """The line in the file, when both the file position and the template line are known."""
        if self.location.line is None:
            return None
        return self.location.line + (self.template_line or 1) - 1

    def _format(self) -> str:
        where = self.location.file or "<string>"
        if self.file_line is not None:
            where = f"{where}:{self.file_line}"
        elif self.template_line is not None:
            where = f"{where} (template line {self.template_line})"
        return f"{where}: template '{self.template}': {self.message}"


_ENV = environment()


def _template_lineno(exc: BaseException) -> int | None:
    """The template line a render-time error happened on (Jinja maps its frames to template lines)."""
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename == _JINJA_FILENAME:
            return frame.lineno
    return getattr(exc, "lineno", None)


class Template:
    """A compiled cloze template.

    Raises:
        TemplateError: the text does not parse in the sandbox.
    """

    def __init__(
        self,
        text: str,
        *,
        name: str = "template",
        location: TemplateLocation | None = None,
        budget: RenderBudget | None = None,
    ):
        self.text = text
        self.name = name
        self.location = location or TemplateLocation()
        self.budget = budget or DEFAULT_BUDGET
        if not isinstance(text, str):
            raise self.error(f"template text must be a string, got {type(text).__name__}")
        if len(text) > self.budget.max_output_chars:
            raise self.error(
                f"the template text has {len(text):,} characters (render_budget.max_output_chars is "
                f"{self.budget.max_output_chars:,})"
            )
        compiling = Meter(self.budget)  # compiling may evaluate constants
        compiling.compiling = True
        token = METER.set(compiling)
        try:
            ast = _ENV.parse(text, filename=_JINJA_FILENAME)
            self.variables: frozenset[str] = frozenset(meta.find_undeclared_variables(ast))
            self._compiled = _ENV.from_string(instrument(ast))
        except jinja2.TemplateSyntaxError as exc:
            raise self.error(f"syntax error: {exc.message}", line=exc.lineno) from None
        except BudgetExceeded as exc:
            raise self.error(f"over the render budget: {exc}", line=_template_lineno(exc)) from None
        except RecursionError:
            raise self.error("the template is nested too deeply to compile") from None
        except Exception as exc:  # any failure to compile user content is the user's error
            raise self.error(
                f"cannot compile: {type(exc).__name__}: {exc}", line=_template_lineno(exc)
            ) from None
        finally:
            METER.reset(token)

    @property
    def fields(self) -> frozenset[str]:
        """The example fields the template reads (every variable but the mask slot)."""
        return self.variables - {MASK}

    def error(self, message: str, *, line: int | None = None) -> TemplateError:
        return TemplateError(message, template=self.name, location=self.location, line=line)

    def line_of(self, needle: str) -> int | None:
        """The first template line containing ``needle``, for pointing errors at the right place."""
        for number, line in enumerate(self.text.splitlines(), start=1):
            if needle in line:
                return number
        return None

    def render(self, fields: Mapping[str, str], mask: str = "") -> str:
        """The full text with ``mask`` standing in the slot (e.g. a label word for a demonstration)."""
        return self._render(fields, mask)

    def render_parts(self, fields: Mapping[str, str]) -> tuple[str, str]:
        """The text before and after the mask slot.

        Raises:
            TemplateError: the template has no slot, more than one, or a filter altered it.
        """
        marker = _slot_marker(fields)
        text = self._render(fields, marker)
        count = text.count(marker)
        if count != 1:
            problem = (
                "has no mask slot ({{ mask }})" if count == 0 else f"has {count} mask slots; it needs one"
            )
            if count == 0 and MASK in self.variables:
                problem = "alters its mask slot with a filter; write {{ mask }} on its own"
            raise self.error(problem, line=self.line_of(MASK) if count else None)
        before, after = text.split(marker)
        return before, after

    def _render(self, fields: Mapping[str, str], mask: str) -> str:
        context = dict(fields)
        context[MASK] = mask
        meter = Meter(self.budget)
        token = METER.set(meter)
        try:
            return self._generate(context, meter)
        except BudgetExceeded as exc:
            raise self.error(f"over the render budget: {exc}", line=_template_lineno(exc)) from None
        except jinja2.UndefinedError as exc:
            missing = exc.message or "undefined value"
            raise self.error(
                f"{missing} (the example has fields: {sorted(fields)})", line=_template_lineno(exc)
            ) from None
        except jinja2.exceptions.SecurityError as exc:
            raise self.error(f"sandbox violation: {exc}", line=_template_lineno(exc)) from None
        except jinja2.TemplateError as exc:
            raise self.error(f"render error: {exc}", line=_template_lineno(exc)) from None
        except RecursionError as exc:
            raise self.error("render error: recursion too deep", line=_template_lineno(exc)) from None
        except MemoryError as exc:
            raise self.error("render error: out of memory", line=_template_lineno(exc)) from None
        except Exception as exc:  # whatever user content raises is reported, never escapes
            raise self.error(
                f"render error: {type(exc).__name__}: {str(exc)[:300]}", line=_template_lineno(exc)
            ) from None
        finally:
            METER.reset(token)

    def _generate(self, context: dict, meter: Meter) -> str:
        """The rendered text, chunk by chunk, stopping as soon as it outgrows the budget."""
        parts, total = [], 0
        for chunk in self._compiled.generate(context):
            total += len(chunk)
            if total > self.budget.max_output_chars:
                raise BudgetExceeded(
                    f"the rendered text passed {self.budget.max_output_chars:,} characters "
                    "(render_budget.max_output_chars)"
                )
            parts.append(chunk)
            meter.tick(0)
        return "".join(parts)

    def __repr__(self) -> str:
        return f"Template(name={self.name!r}, text={self.text!r})"
