"""Cloze templates: Jinja text with one named mask slot, rendered in a sandbox.

A template is user content, so it is compiled and rendered by ``jinja2.sandbox.SandboxedEnvironment``
with ``StrictUndefined``: a field the example lacks, a syntax error or an attempt to reach Python
internals is a :class:`TemplateError` naming the file, the template and the line.

The mask slot is the variable ``mask`` (``{{ mask }}``). Rendering puts a private sentinel there and
splits the text around it, so the caller gets the text before and after the slot and decides what the
slot becomes (mask tokens, a label word, or nothing for a causal prefix).
"""

from __future__ import annotations

import contextvars
import functools
import re
import string
import time
import traceback
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import jinja2
from jinja2 import meta, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

MASK = "mask"
# A private-use character sequence: cannot occur in real text, survives every string filter except
# those that change case (lint reports a slot that did not survive).
_SENTINEL = "\ue000\ue001slot\ue001\ue000"
_JINJA_FILENAME = "<template>"


@dataclass(frozen=True)
class TemplateLocation:
    """Where a template's text stands: a file and the line its text starts on (1-based)."""

    file: str | None = None
    line: int | None = None


class TemplateError(ValueError):
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


@dataclass(frozen=True)
class RenderBudget:
    """What one render of a template may cost. Templates are user content: a loop of a billion steps,
    a string multiplied by a billion or a macro that calls itself twice per call must end in a clear
    error, not a hung process or an exhausted memory.

    ``max_iterations`` counts loop iterations, calls (macros, methods, filters, ``range``) and
    operators together; ``max_output_chars`` bounds the rendered text and every string or list built on
    the way; ``timeout_seconds`` is the wall-clock limit of one render. A task file overrides them with
    a top-level ``render_budget:`` mapping.
    """

    max_iterations: int = 100_000
    max_output_chars: int = 200_000
    timeout_seconds: float = 2.0

    def __post_init__(self):
        for name in ("max_iterations", "max_output_chars"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"render_budget.{name} must be a positive integer, got {value!r}")
        value = self.timeout_seconds
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 3600:
            raise ValueError(f"render_budget.timeout_seconds must be in (0, 3600] seconds, got {value!r}")


DEFAULT_BUDGET = RenderBudget()


class BudgetExceeded(Exception):
    """Raised inside a render that went over its budget (turned into a TemplateError with its line)."""


class _Meter:
    """The running cost of one render."""

    def __init__(self, budget: RenderBudget):
        self.budget = budget
        self.steps = 0
        self.deadline = time.monotonic() + budget.timeout_seconds

    def tick(self, n: int = 1) -> None:
        self.steps += n
        if self.steps > self.budget.max_iterations:
            raise BudgetExceeded(
                f"more than {self.budget.max_iterations:,} loop iterations and calls "
                "(render_budget.max_iterations)"
            )
        if time.monotonic() > self.deadline:
            raise BudgetExceeded(
                f"rendering took longer than {self.budget.timeout_seconds} s (render_budget.timeout_seconds)"
            )

    def size(self, value):
        """``value`` unchanged, after checking that a string or collection is within the output bound."""
        if isinstance(value, (str, bytes, list, tuple, dict, set, frozenset)):
            if len(value) > self.budget.max_output_chars:
                raise BudgetExceeded(
                    f"a value of {len(value):,} items or characters (render_budget.max_output_chars is "
                    f"{self.budget.max_output_chars:,})"
                )
        elif isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 4096:
            raise BudgetExceeded("an integer of more than 4096 bits")
        return value

    def argument(self, value) -> None:
        """A number passed to a call or filter (a width, a count, a repeat) must stay within the bound."""
        if (
            isinstance(value, int)
            and not isinstance(value, bool)
            and abs(value) > self.budget.max_output_chars
        ):
            raise BudgetExceeded(
                f"the argument {value:,} is larger than render_budget.max_output_chars "
                f"({self.budget.max_output_chars:,})"
            )
        if isinstance(value, float) and abs(value) > self.budget.max_output_chars:
            raise BudgetExceeded(f"the argument {value:g} is larger than render_budget.max_output_chars")


_METER: contextvars.ContextVar[_Meter | None] = contextvars.ContextVar("lmbff_render_meter", default=None)
# Widths in %-formats (%9999s) and in {}-format specs ({:>9999}): they size the result before it exists.
_PERCENT_WIDTHS = re.compile(r"%[-#0 +]*(\d+)?(?:\.(\d+))?")
_BRACE_SPECS = re.compile(r"\{[^{}]*:([^{}]*)\}")


def _meter() -> _Meter:
    meter = _METER.get()
    if meter is None:  # rendering outside Template._render (e.g. a test compiling by hand)
        meter = _Meter(DEFAULT_BUDGET)
        _METER.set(meter)
    return meter


def _check_format_string(meter: _Meter, text: str) -> None:
    widths = [int(n) for match in _PERCENT_WIDTHS.finditer(text) for n in match.groups() if n]
    widths += [int(n) for spec in _BRACE_SPECS.findall(text) for n in re.findall(r"\d+", spec)]
    for width in widths:
        meter.argument(width)


def _guarded_filter(name: str, function):
    """A filter that counts towards the budget and whose numeric arguments and result are bounded."""

    @functools.wraps(function)
    def guarded(*args, **kwargs):
        meter = _meter()
        meter.tick()
        for value in (*args, *kwargs.values()):
            meter.argument(value)
        if name == "format" and args and isinstance(args[0], str):
            _check_format_string(meter, args[0])
        if name == "replace":
            _check_replace(meter, args)
        return meter.size(function(*args, **kwargs))

    return guarded


def _check_replace(meter: _Meter, args) -> None:
    strings = [a for a in args if isinstance(a, str)]
    if len(strings) >= 3:
        text, old, new = strings[-3:]
        if old and len(new) > len(old):
            grown = len(text) + text.count(old) * (len(new) - len(old))
            if grown > meter.budget.max_output_chars:
                raise BudgetExceeded(
                    f"replace would make {grown:,} characters (render_budget.max_output_chars)"
                )


def _loop(iterable) -> Iterator:
    """Every template for-loop iterates through this: one budget step per iteration."""
    meter = _meter()
    for item in iterable:
        meter.tick()
        yield item


def _budgeted_range(*args):
    meter = _meter()
    for value in args:
        if not isinstance(value, int) or isinstance(value, bool):
            raise BudgetExceeded(f"range() takes integers, got {value!r}")
    span = range(*args)
    if len(span) > meter.budget.max_iterations:
        raise BudgetExceeded(
            f"range of {len(span):,} items (render_budget.max_iterations is {meter.budget.max_iterations:,})"
        )
    return _loop(span)


class _BudgetedEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox, with every call, loop and size-changing operator metered against the render budget.

    Why by hand: Jinja's sandbox guards attribute access and caps ``range`` at 100,000 items per call,
    but bounds neither nested loops, nor string growth (``'x' * 10**9``, ``'%9999999s' % x``), nor time;
    a template is user content, so every one of those must end in an error."""

    intercepted_binops = frozenset({"*", "**", "+", "%", "//"})

    def call_binop(self, context, operator, left, right):
        meter = _meter()
        meter.tick()
        numeric_power = (
            operator == "**" and isinstance(right, (int, float)) and isinstance(left, (int, float))
        )
        if numeric_power and (
            abs(right) > 4096 or (isinstance(left, int) and abs(left).bit_length() * abs(right) > 4096)
        ):
            raise BudgetExceeded(f"the power {left!r} ** {right!r} is too large")
        if operator == "*":
            for seq, count in ((left, right), (right, left)):
                if isinstance(seq, (str, bytes, list, tuple)) and isinstance(count, int):
                    meter.size(seq)
                    if len(seq) * max(count, 0) > meter.budget.max_output_chars:
                        raise BudgetExceeded(
                            f"repeating {len(seq):,} items {count:,} times "
                            f"(render_budget.max_output_chars is {meter.budget.max_output_chars:,})"
                        )
        if operator == "%" and isinstance(left, str):
            _check_format_string(meter, left)
        return meter.size(super().call_binop(context, operator, left, right))

    def call(__self, __context, __obj, *args, **kwargs):  # Jinja's own signature
        meter = _meter()
        meter.tick()
        for value in (*args, *kwargs.values()):
            meter.argument(value)
        target = getattr(__obj, "__wrapped__", __obj)  # the sandbox wraps str.format at attribute access
        owner = getattr(target, "__self__", None)
        if isinstance(owner, str):
            method = getattr(target, "__name__", "")
            if method in ("format", "format_map"):
                _check_format_string(meter, owner)
            if method == "replace":
                _check_replace(meter, (owner, *args))
        return meter.size(super().call(__context, __obj, *args, **kwargs))


def _size_filter(value):
    return _meter().size(value)


def _instrument(ast: nodes.Template) -> nodes.Template:
    """Route every for-loop's iterable through the metered loop, and size-check every ``~`` join."""
    for loop in ast.find_all(nodes.For):
        loop.iter = nodes.Filter(loop.iter, "_lmbff_loop", [], [], None, None, lineno=loop.iter.lineno)
    for parent in list(ast.find_all(nodes.Node)):
        for field_name in parent.fields:
            child = getattr(parent, field_name, None)
            if isinstance(child, nodes.Concat):
                setattr(
                    parent,
                    field_name,
                    nodes.Filter(child, "_lmbff_size", [], [], None, None, lineno=child.lineno),
                )
            elif isinstance(child, list):
                setattr(
                    parent,
                    field_name,
                    [
                        nodes.Filter(c, "_lmbff_size", [], [], None, None, lineno=c.lineno)
                        if isinstance(c, nodes.Concat)
                        else c
                        for c in child
                    ],
                )
    return ast


def strip_final_punct(text: str) -> str:
    """The text without its trailing punctuation (LM-BFF's ``*sent-_0*``)."""
    return text.rstrip().rstrip(string.punctuation + " ")


def lower_first(text: str) -> str:
    """The text with its first character lower-cased (LM-BFF's ``*sentl_1*``)."""
    return text[:1].lower() + text[1:]


def upper_first(text: str) -> str:
    """The text with its first character upper-cased."""
    return text[:1].upper() + text[1:]


def _environment() -> _BudgetedEnvironment:
    env = _BudgetedEnvironment(
        undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False
    )
    env.filters.update(strip_final_punct=strip_final_punct, lower_first=lower_first, upper_first=upper_first)
    env.filters = {name: _guarded_filter(name, f) for name, f in env.filters.items()}
    env.filters.update(_lmbff_loop=_loop, _lmbff_size=_size_filter)
    # range is metered; lipsum (generated text of any length) has no place in a prompt.
    env.globals = {k: v for k, v in env.globals.items() if k not in ("lipsum",)}
    env.globals["range"] = _budgeted_range
    return env


_ENV = _environment()


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
        token = _METER.set(_Meter(self.budget))  # compiling may evaluate constants
        try:
            ast = _ENV.parse(text, filename=_JINJA_FILENAME)
            self.variables: frozenset[str] = frozenset(meta.find_undeclared_variables(ast))
            self._compiled = _ENV.from_string(_instrument(ast))
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
            _METER.reset(token)

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
        text = self._render(fields, _SENTINEL)
        count = text.count(_SENTINEL)
        if count != 1:
            problem = (
                "has no mask slot ({{ mask }})" if count == 0 else f"has {count} mask slots; it needs one"
            )
            if count == 0 and MASK in self.variables:
                problem = "alters its mask slot with a filter; write {{ mask }} on its own"
            raise self.error(problem, line=self.line_of(MASK) if count else None)
        before, after = text.split(_SENTINEL)
        return before, after

    def _render(self, fields: Mapping[str, str], mask: str) -> str:
        context = dict(fields)
        context[MASK] = mask
        meter = _Meter(self.budget)
        token = _METER.set(meter)
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
            _METER.reset(token)

    def _generate(self, context: dict, meter: _Meter) -> str:
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
