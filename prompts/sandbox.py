"""The sandbox templates render in, and the budget that bounds one render.

A template is user content: a loop of a billion steps, a string padded to a billion characters or a
macro that calls itself twice per call must end in a clear error, never a hung process or an
exhausted memory. So every operation that can make text or a collection grow has its result's size
computed from its operands *before* it runs, and is refused when that size is over the budget; an
operation that is not on the allow-list below cannot run at all.

Why by hand: Jinja's sandbox guards attribute access and caps ``range`` at 100,000 items per call,
but bounds neither nested loops, nor string growth (``'x' * 10**9``, ``'%*s' % (10**9, x)``,
``x|indent(10**5)``), nor the text a macro or a loop emits, nor time.
"""

from __future__ import annotations

import contextvars
import os
import re
import string
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace

from .errors import ConfigError

# The hard ceilings a task file's render_budget may not pass; only the operator lifts them.
CEILING_ENV = {
    "max_iterations": "LMBFF_RENDER_MAX_ITERATIONS",
    "max_output_chars": "LMBFF_RENDER_MAX_OUTPUT_CHARS",
    "timeout_seconds": "LMBFF_RENDER_MAX_SECONDS",
}
_CEILINGS = {"max_iterations": 1_000_000, "max_output_chars": 2_000_000, "timeout_seconds": 10.0}
# Text emitted in all during one render (by macros, blocks and loops too, before it is joined) may be
# this many times max_output_chars: a macro's output is counted when it is made and again when used.
EMITTED_FACTOR = 4


def ceilings() -> dict[str, float]:
    """The hard ceilings, after the operator's environment variables (``$LMBFF_RENDER_MAX_*``).

    Raises:
        ValueError: an environment variable that is not a positive number.
    """
    values: dict[str, float] = {}
    for name, default in _CEILINGS.items():
        text = os.environ.get(CEILING_ENV[name])
        if not text:
            values[name] = default
            continue
        try:
            value = float(text) if name == "timeout_seconds" else int(text)
        except ValueError:
            value = 0
        if not value > 0:
            raise ConfigError(f"${CEILING_ENV[name]}={text!r}: expected a positive number")
        values[name] = value
    return values


@dataclass(frozen=True)
class RenderBudget:
    """What one render of a template may cost.

    ``max_iterations`` counts loop iterations, calls (macros, methods, filters, ``range``) and
    operators together; ``max_output_chars`` bounds the rendered text and every string or list built on
    the way (computed before it is built); ``timeout_seconds`` is the wall-clock limit of one render. A
    task file may lower each, or raise it up to a hard ceiling (1,000,000 iterations, 2,000,000
    characters, 10 s) that only the operator lifts, with ``$LMBFF_RENDER_MAX_ITERATIONS``,
    ``$LMBFF_RENDER_MAX_OUTPUT_CHARS`` and ``$LMBFF_RENDER_MAX_SECONDS``.

    Raises:
        ValueError: a value that is not a positive number, or one over its ceiling.
    """

    max_iterations: int = 100_000
    max_output_chars: int = 200_000
    timeout_seconds: float = 2.0

    def __post_init__(self):
        limits = ceilings()
        for name in ("max_iterations", "max_output_chars", "timeout_seconds"):
            value = getattr(self, name)
            integer = name != "timeout_seconds"
            kinds = (int,) if integer else (int, float)
            if isinstance(value, bool) or not isinstance(value, kinds) or not value > 0:
                expected = "a positive integer" if integer else "a positive number of seconds"
                raise ConfigError(f"render_budget.{name} must be {expected}, got {value!r}")
            if value > limits[name]:
                raise ConfigError(
                    f"render_budget.{name} is {value:,}, over the ceiling of {limits[name]:,}; a task file "
                    f"may lower the budget, and only the operator raises the ceiling (${CEILING_ENV[name]})"
                )


DEFAULT_BUDGET = RenderBudget()


class BudgetExceeded(Exception):
    """Raised inside a render that went over its budget (turned into a TemplateError with its line)."""


class Meter:
    """The running cost of one render."""

    def __init__(self, budget: RenderBudget):
        self.budget = budget
        self.steps = 0
        self.emitted = 0
        # True while the template compiles: the BudgetExceeded a fold raises then makes Jinja leave
        # the expression to run time (where its output is counted as it is emitted) instead.
        self.compiling = False
        self.folded = 0
        self.deadline = time.monotonic() + budget.timeout_seconds

    @property
    def limit(self) -> int:
        return self.budget.max_output_chars

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

    def refuse(self, what: str, size: int) -> None:
        """Refuse an operation whose result would have ``size`` characters or items, before it runs."""
        if size > self.limit:
            raise BudgetExceeded(
                f"{what} would make {size:,} characters or items "
                f"(render_budget.max_output_chars is {self.limit:,})"
            )

    def size(self, value):
        """``value`` unchanged, after checking that a string or collection is within the output bound."""
        if isinstance(value, (str, bytes, list, tuple, dict, set, frozenset)):
            self.refuse("a value", len(value))
        elif isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 4096:
            raise BudgetExceeded("an integer of more than 4096 bits")
        return value

    def argument(self, value) -> None:
        """A number passed to a call or filter (a width, a count, a repeat) must stay within the bound."""
        if isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) > self.limit:
            raise BudgetExceeded(
                f"the argument {value:,} is larger than render_budget.max_output_chars ({self.limit:,})"
            )

    def emit(self, size: int) -> None:
        self.emitted += size
        if self.emitted > EMITTED_FACTOR * self.limit:
            raise BudgetExceeded(
                f"the template emitted more than {EMITTED_FACTOR * self.limit:,} characters in all, "
                f"in loops, macros and blocks ({EMITTED_FACTOR} x render_budget.max_output_chars)"
            )


METER: contextvars.ContextVar[Meter | None] = contextvars.ContextVar("lmbff_render_meter", default=None)


def meter() -> Meter:
    current = METER.get()
    if current is None:  # rendering outside Template._render (e.g. a test compiling by hand)
        current = Meter(DEFAULT_BUDGET)
        METER.set(current)
    return current


# --- sizes, computed without building the text ---------------------------------------------------


def text_size(value: Any, limit: int) -> int:
    """An upper bound on ``len(str(value))``, computed without building it, that stops counting past
    ``limit`` (so it costs at most about ``limit`` steps whatever ``value`` holds)."""
    return _shape(value, limit)[0]


def _shape(value: Any, limit: int) -> tuple[int, int, int]:
    """(text size, items, depth) of a value as ``str``, ``pprint`` or JSON would write it, each an
    upper bound; counting stops once the size passes ``limit``."""
    total = items = depth = 0
    stack: list[tuple[Any, int, bool]] = [(value, 1, False)]
    while stack and total <= limit:
        current, level, quoted = stack.pop()
        items += 1
        depth = max(depth, level)
        if isinstance(current, str):
            total += min(len(repr(current)), 12 * len(current) + 2) if quoted else len(current)
        elif isinstance(current, (bytes, bytearray)):
            total += 4 * len(current) + 3
        elif isinstance(current, bool) or current is None:
            total += 5
        elif isinstance(current, int):
            total += current.bit_length() * 30103 // 100000 + 2
        elif isinstance(current, float):
            total += 25
        elif isinstance(current, Mapping):
            total += 2 + 4 * len(current)
            for key, item in current.items():
                stack.append((key, level + 1, True))
                stack.append((item, level + 1, True))
        elif isinstance(current, (list, tuple, set, frozenset)):
            total += 2 + 2 * len(current)
            stack.extend((item, level + 1, True) for item in current)
        elif isinstance(current, Namespace):
            total += 14
            stack.append((current._Namespace__attrs, level, True))  # type: ignore[attr-defined]
        else:  # Jinja's own objects (macros, loops, cyclers, undefined): short fixed reprs
            total += 200
    return total, items, depth


def _int_values(*values: Any, limit: int) -> list[int]:
    """Every integer among ``values`` and inside their collections: a width in a format can come from
    any of them (``'%*s' % (n, x)``, ``'{:>{w}}'.format(x, w=n)``)."""
    found: list[int] = []
    stack = list(values)
    seen = 0
    while stack and seen <= limit:
        current = stack.pop()
        seen += 1
        if isinstance(current, bool):
            continue
        if isinstance(current, int):
            found.append(abs(current))
        elif isinstance(current, Mapping):
            stack.extend(current.values())
        elif isinstance(current, (list, tuple)):
            stack.extend(current)
    return found


_PERCENT = re.compile(r"%(?:\(([^)]*)\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?([a-zA-Z%])")


def percent_size(fmt: str, args: Any, limit: int) -> int:
    """The size ``fmt % args`` would have: its text, plus for each conversion the larger of its width
    and its value's text, plus its precision (``%.9f``); widths and precisions written ``*`` are taken
    from the arguments, as Python does."""
    positional = list(args) if isinstance(args, tuple) else [args]
    mapping = args if isinstance(args, Mapping) else None
    total = len(fmt)
    for match in _PERCENT.finditer(fmt):
        key, width, precision, conversion = match.groups()
        if conversion == "%":
            continue
        sizes = []
        for part in (width, precision):
            if part == "*":
                taken = positional.pop(0) if positional else 0
                sizes.append(abs(taken) if isinstance(taken, int) and not isinstance(taken, bool) else 0)
            else:
                sizes.append(int(part) if part else 0)
        if mapping is not None and key is not None:
            value = mapping.get(key, "")
        else:
            value = positional.pop(0) if positional else ""
        content = _shape(value, limit)[0] if conversion in "sra" else 40
        total += max(sizes[0], content + sizes[1])
        if total > limit:
            break
    return total


def brace_size(fmt: str, args: tuple, kwargs: Mapping, limit: int) -> int:
    """The size ``fmt.format(*args, **kwargs)`` would have: its literal text, plus for each field the
    largest argument's text and its width; a width nested in braces (``{x:>{w}}``) may be any integer
    among the arguments, so the largest one is taken."""
    values = [*args, *kwargs.values()]
    widest = max((_shape(v, limit)[0] for v in values), default=0)
    largest = max(_int_values(*values, limit=limit), default=0)
    total = 0
    try:
        parsed = list(string.Formatter().parse(fmt))
    except ValueError:
        return len(fmt)  # format() will raise the same error before building anything
    for literal, field, spec, _ in parsed:
        total += len(literal)
        if field is None:
            continue
        spec = spec or ""
        width = largest if "{" in spec else sum(int(n) for n in re.findall(r"\d+", spec))
        total += widest + width
        if total > limit:
            break
    return total


# --- the allow-list: every filter and every string method, with the size of its result ------------

Estimate = Callable[..., int] | None  # None: the result is at most a small fixed multiple of the input


def _join_size(limit: int, value, d: str = "", attribute=None) -> int:
    if isinstance(value, str):  # joins its characters
        return len(value) + max(len(value) - 1, 0) * len(str(d))
    items = list(value) if isinstance(value, Mapping) else value if isinstance(value, (list, tuple)) else []
    sizes = sum(_shape(v, limit)[0] for v in items)
    return sizes + max(len(items) - 1, 0) * len(str(d))


def _replace_size(limit: int, text, old, new, count=None) -> int:
    if not all(isinstance(v, (str, bytes)) for v in (text, old, new)):
        return 0
    found = len(text) + 1 if not old else text.count(old)
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    return len(text) + found * max(len(new) - len(old), 0)


def _indent_size(limit: int, text, width=4, first=False, blank=False) -> int:
    lines = str(text).count("\n") + 1
    step = len(width) if isinstance(width, str) else (width if isinstance(width, int) else 0)
    return text_size(text, limit) + lines * max(step, 0)


def _wordwrap_size(limit: int, text, width=79, break_long_words=True, wrapstring=None, *_, **__) -> int:
    text = str(text)
    lines = len(text) // max(width if isinstance(width, int) else 1, 1) + text.count("\n") + 1
    return len(text) + lines * len(wrapstring if isinstance(wrapstring, str) else "\n")


def _tojson_size(limit: int, value, indent=None) -> int:
    size, items, depth = _shape(value, limit)
    step = indent if isinstance(indent, int) and not isinstance(indent, bool) else 0
    return 6 * size + items * (depth * max(step, 0) + 1)


def _pprint_size(limit: int, value) -> int:
    size, items, depth = _shape(value, limit)
    return size + items * (depth + 1)


def _urlize_size(
    limit: int, text, trim_url_limit=None, nofollow=False, target=None, rel=None, *_, **__
) -> int:
    text = str(text)
    extra = sum(len(v) for v in (target, rel) if isinstance(v, str))
    return 3 * len(text) + (len(text) // 2 + 1) * (extra + 60)


def _xmlattr_size(limit: int, value, autospace=True) -> int:
    size, items, _ = _shape(value, limit)
    return 6 * size + 4 * items


def _width_size(limit: int, value, width=80, *_, **__) -> int:
    return max(text_size(value, limit), width if isinstance(width, int) else 0)


def _sum_size(limit: int, values, attribute=None, start=0) -> int:
    items = values if isinstance(values, (list, tuple)) else []
    return sum(len(v) for v in items if isinstance(v, (list, tuple, str))) + (
        len(start) if isinstance(start, (list, tuple)) else 0
    )


def _format_filter_size(limit: int, fmt, *args, **kwargs) -> int:
    return percent_size(str(fmt), kwargs if kwargs else tuple(args), limit)


def _fill_size(limit: int, value, count=0, fill_with=None) -> int:
    items = len(value) if isinstance(value, (list, tuple, str)) else 0
    return items + (count if isinstance(count, int) else 0)


FILTERS: dict[str, Estimate] = {
    # Growing: the size of the result, from the operands.
    "center": _width_size,
    "format": _format_filter_size,
    "indent": _indent_size,
    "join": _join_size,
    "pprint": _pprint_size,
    "replace": _replace_size,
    "string": lambda limit, value: text_size(value, limit),
    "sum": _sum_size,
    "tojson": _tojson_size,
    "urlize": _urlize_size,
    "wordwrap": _wordwrap_size,
    "xmlattr": _xmlattr_size,
    "batch": _fill_size,
    "slice": _fill_size,
    # At most a small fixed multiple of the input (escapes: x6, upper-casing: x3, url-encoding: x12).
    **dict.fromkeys(
        [
            "abs",
            "attr",
            "capitalize",
            "count",
            "d",
            "default",
            "dictsort",
            "e",
            "escape",
            "filesizeformat",
            "first",
            "float",
            "forceescape",
            "groupby",
            "int",
            "items",
            "last",
            "length",
            "list",
            "lower",
            "map",
            "max",
            "min",
            "random",
            "reject",
            "rejectattr",
            "reverse",
            "round",
            "safe",
            "select",
            "selectattr",
            "sort",
            "striptags",
            "title",
            "trim",
            "truncate",
            "unique",
            "upper",
            "urlencode",
            "wordcount",
            "strip_final_punct",
            "lower_first",
            "upper_first",
        ]
    ),
}


def _expandtabs_size(limit: int, text, tabsize=8) -> int:
    tabs = text.count("\t" if isinstance(text, str) else b"\t")
    return len(text) + tabs * max(tabsize if isinstance(tabsize, int) else 8, 0)


def _translate_size(limit: int, text, table=None) -> int:
    if not isinstance(table, Mapping):
        return len(text)
    longest = max((len(v) for v in table.values() if isinstance(v, (str, bytes))), default=1)
    return len(text) * max(longest, 1)


def _method_join_size(limit: int, separator, items=()) -> int:
    if isinstance(items, (str, bytes)):
        return len(items) + max(len(items) - 1, 0) * len(separator)
    items = list(items) if isinstance(items, (list, tuple, Mapping)) else []
    return sum(len(v) for v in items if isinstance(v, (str, bytes))) + max(len(items) - 1, 0) * len(separator)


def _hex_size(limit: int, data, sep=None, bytes_per_sep=1) -> int:
    return 3 * len(data)


STRING_METHODS: dict[str, Estimate] = {
    "center": _width_size,
    "ljust": _width_size,
    "rjust": _width_size,
    "zfill": _width_size,
    "expandtabs": _expandtabs_size,
    "join": _method_join_size,
    "replace": _replace_size,
    "format": lambda limit, fmt, *args, **kwargs: brace_size(fmt, args, kwargs, limit),
    "format_map": lambda limit, fmt, mapping={}: brace_size(fmt, (), mapping, limit),
    "translate": _translate_size,
    "hex": _hex_size,
    **dict.fromkeys(
        [
            "capitalize",
            "casefold",
            "count",
            "decode",
            "encode",
            "endswith",
            "find",
            "index",
            "isalnum",
            "isalpha",
            "isascii",
            "isdecimal",
            "isdigit",
            "isidentifier",
            "islower",
            "isnumeric",
            "isprintable",
            "isspace",
            "istitle",
            "isupper",
            "lower",
            "lstrip",
            "partition",
            "removeprefix",
            "removesuffix",
            "rfind",
            "rindex",
            "rpartition",
            "rsplit",
            "rstrip",
            "split",
            "splitlines",
            "startswith",
            "strip",
            "swapcase",
            "title",
            "upper",
        ]
    ),
}


def check_filter(name: str, args: tuple, kwargs: dict) -> None:
    """Refuse a filter call whose result would be over the budget, before it runs."""
    current = meter()
    estimate = FILTERS.get(name, False)
    if estimate is False:
        raise BudgetExceeded(f"the filter {name!r} is not allowed in templates")
    if estimate is not None and args:
        current.refuse(f"the filter {name!r}", estimate(current.limit, *args, **kwargs))


def check_method(owner: str | bytes, name: str, args: tuple, kwargs: dict) -> None:
    """Refuse a string method that is not on the allow-list, or whose result would be too large."""
    current = meter()
    estimate = STRING_METHODS.get(name, False)
    if estimate is False:
        raise BudgetExceeded(f"the method {type(owner).__name__}.{name} is not allowed in templates")
    if estimate is not None:
        current.refuse(f"{type(owner).__name__}.{name}", estimate(current.limit, owner, *args, **kwargs))


# --- the environment ------------------------------------------------------------------------------


def _strip_context(function, args: tuple) -> tuple:
    """A filter's own arguments, without the context Jinja passes first to some filters."""
    from jinja2.utils import _PassArg

    return args[1:] if _PassArg.from_obj(function) is not None else args


def _guarded_filter(name: str, function):
    """A filter that counts towards the budget, whose numeric arguments are bounded, and whose result's
    size is computed from its operands before it runs."""

    def guarded(*args, **kwargs):
        current = meter()
        current.tick()
        own = _strip_context(function, args)
        for value in (*own[1:], *kwargs.values()):
            current.argument(value)
        if name in ("join", "sum", "batch", "slice") and own and not isinstance(own[0], (list, tuple, str)):
            own = (_materialise(own[0]), *own[1:])  # a generator: count its items before joining
            args = (*args[: len(args) - len(own)], *own)
        check_filter(name, own, kwargs)
        result = current.size(function(*args, **kwargs))
        if current.compiling:  # Jinja folds constant filter calls into the compiled code: bound that
            current.folded += text_size(result, current.limit)
            current.refuse("constants folded when the template compiles", current.folded)
        return result

    guarded.__name__ = getattr(function, "__name__", name)
    guarded.__doc__ = function.__doc__
    guarded.__dict__.update(getattr(function, "__dict__", {}))  # keeps jinja_pass_arg
    return guarded


def _materialise(iterable) -> list:
    current = meter()
    items = []
    for item in iterable:
        items.append(item)
        if len(items) > current.limit:
            current.refuse("a sequence", len(items))
    return items


def _loop(iterable) -> Iterator:
    """Every template for-loop iterates through this: one budget step per iteration."""
    current = meter()
    for item in iterable:
        current.tick()
        yield item


def _budgeted_range(*args):
    current = meter()
    for value in args:
        if not isinstance(value, int) or isinstance(value, bool):
            raise BudgetExceeded(f"range() takes integers, got {value!r}")
    span = range(*args)
    if len(span) > current.budget.max_iterations:
        raise BudgetExceeded(
            f"range of {len(span):,} items "
            f"(render_budget.max_iterations is {current.budget.max_iterations:,})"
        )
    return _loop(span)


@jinja2.pass_context  # never evaluated when the template compiles (pass_context makes it runtime only)
def _emit(context, value):
    """Every piece of output (``{{ x }}`` and literal text, in loops, macros and blocks too) passes
    here: its size is counted before Jinja turns it into text and buffers it."""
    current = meter()
    size = text_size(value, current.limit)
    current.refuse("an output value", size)
    current.emit(size)
    return value


@jinja2.pass_context
def _concat(context, values):
    """``a ~ b ~ c``: the joined size is computed before the text is built."""
    current = meter()
    current.refuse("joining with ~", sum(text_size(v, current.limit) for v in values))
    return "".join(str(v) for v in values)


class BudgetedEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox, with every call, loop and size-changing operator metered against the budget."""

    intercepted_binops = frozenset({"*", "**", "+", "%", "//"})

    def call_binop(self, context, operator, left, right):
        current = meter()
        current.tick()
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
                    current.refuse(f"repeating {len(seq):,} items {count:,} times", len(seq) * max(count, 0))
        if operator == "+" and isinstance(left, (str, bytes, list, tuple)) and isinstance(right, type(left)):
            current.refuse("joining with +", len(left) + len(right))
        if operator == "%" and isinstance(left, (str, bytes)):
            fmt = left if isinstance(left, str) else left.decode("latin-1")
            current.refuse("%-formatting", percent_size(fmt, right, current.limit))
        return current.size(super().call_binop(context, operator, left, right))

    def call(__self, __context, __obj, *args, **kwargs):  # Jinja's own signature
        current = meter()
        current.tick()
        for value in (*args, *kwargs.values()):
            current.argument(value)
        target = getattr(__obj, "__wrapped__", __obj)  # the sandbox wraps str.format at attribute access
        owner = getattr(target, "__self__", None)
        if isinstance(owner, (str, bytes)):
            name = getattr(target, "__name__", "")
            if name == "join" and args and not isinstance(args[0], (list, tuple, str, bytes)):
                args = (_materialise(args[0]), *args[1:])  # a generator: count its items first
            check_method(owner, name, args, kwargs)
        return current.size(super().call(__context, __obj, *args, **kwargs))


def _wrap(node: nodes.Node, filter_name: str) -> nodes.Filter:
    return nodes.Filter(node, filter_name, [], [], None, None, lineno=node.lineno)


def instrument(ast: nodes.Template) -> nodes.Template:
    """Route every for-loop's iterable through the metered loop, every output through :func:`_emit`
    and every ``~`` through :func:`_concat`, so that nothing is built before its size is known."""
    for loop in ast.find_all(nodes.For):
        loop.iter = _wrap(loop.iter, "_lmbff_loop")
    for parent in list(ast.find_all(nodes.Node)):
        for field_name in parent.fields:
            child = getattr(parent, field_name, None)
            if isinstance(child, nodes.Concat):
                setattr(parent, field_name, _concat_node(child))
            elif isinstance(child, list):
                setattr(
                    parent, field_name, [_concat_node(c) if isinstance(c, nodes.Concat) else c for c in child]
                )
    for output in ast.find_all(nodes.Output):
        output.nodes = [
            _wrap(
                nodes.Const(c.data, lineno=c.lineno) if isinstance(c, nodes.TemplateData) else c,
                "_lmbff_emit",
            )
            for c in output.nodes
        ]
    return ast


def _concat_node(node: nodes.Concat) -> nodes.Filter:
    return _wrap(nodes.List(node.nodes, lineno=node.lineno), "_lmbff_concat")


def strip_final_punct(text: str) -> str:
    """The text without its trailing punctuation (LM-BFF's ``*sent-_0*``)."""
    return text.rstrip().rstrip(string.punctuation + " ")


def lower_first(text: str) -> str:
    """The text with its first character lower-cased (LM-BFF's ``*sentl_1*``)."""
    return text[:1].lower() + text[1:]


def upper_first(text: str) -> str:
    """The text with its first character upper-cased."""
    return text[:1].upper() + text[1:]


def environment() -> BudgetedEnvironment:
    env = BudgetedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False)
    env.filters.update(strip_final_punct=strip_final_punct, lower_first=lower_first, upper_first=upper_first)
    env.filters = {name: _guarded_filter(name, f) for name, f in env.filters.items()}
    env.filters.update(_lmbff_loop=_loop, _lmbff_emit=_emit, _lmbff_concat=_concat)
    # range is metered; lipsum (generated text of any length) has no place in a prompt.
    env.globals = {k: v for k, v in env.globals.items() if k not in ("lipsum",)}
    env.globals["range"] = _budgeted_range
    return env


__all__ = [
    "CEILING_ENV",
    "DEFAULT_BUDGET",
    "FILTERS",
    "STRING_METHODS",
    "BudgetExceeded",
    "BudgetedEnvironment",
    "Meter",
    "RenderBudget",
    "ceilings",
    "environment",
    "instrument",
]
