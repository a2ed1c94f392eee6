"""One validation path for every configuration dataclass: a field declares its constraints once
(:func:`option`: help, bounds), its annotation gives its type and, for ``Literal``, its choices.
:func:`check_options` (called by each config's ``__post_init__``) and :func:`add_options` (the one
dataclass-to-argparse builder of the command line) both read them, so the Python API and the shell say
the same thing about the same value. Free of torch and numpy, so ``lmbff --help`` stays fast.

Why not pydantic dataclasses: their coercion (``"8"`` to 8, ``2.0`` to 2) is what this module refuses,
and field order and defaults would need to be re-declared for each backend subclass.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import math
import numbers
import types
import typing
from typing import Any

from .errors import ConfigError

_MISSING: Any = dataclasses.MISSING


def option(
    default: Any = _MISSING,
    *,
    help: str = "",
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    default_factory: Any = _MISSING,
) -> Any:
    """A dataclass field with its help text and bounds (``low``/``high``, open or closed)."""
    metadata = {"help": help, "low": low, "high": high, "low_open": low_open, "high_open": high_open}
    if default_factory is not _MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _metadata(cls: type, name: str) -> dict:
    """A field's metadata, from the nearest class in the MRO that declares it with some: a subclass
    that only changes a default (``learning_rate: float = 1e-4``) keeps its base's bounds and help."""
    for klass in cls.__mro__:
        for f in dataclasses.fields(klass) if dataclasses.is_dataclass(klass) else ():
            if f.name == name and f.metadata:
                return dict(f.metadata)
    return {}


def _without_none(kind: Any) -> tuple[Any, bool]:
    """(the annotation without ``None``, whether ``None`` is allowed)."""
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        allowed = len(args) < len(typing.get_args(kind))
        return (args[0] if len(args) == 1 else kind), allowed
    return kind, False


def choices_of(cls: type, name: str) -> tuple | None:
    """The choices of a ``Literal`` field, else None."""
    kind, _ = _without_none(_hints(cls)[name])
    return typing.get_args(kind) if typing.get_origin(kind) is typing.Literal else None


def _number_text(value: float) -> str:
    """A bound as written: whole numbers in full (4294967295, not 4.29497e+09), others as %g."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _bound_text(meta: dict, whole: bool) -> str:
    low, high = meta.get("low"), meta.get("high")
    if low is None and high is None:
        return ""
    if whole and high is None:
        return f" above {_number_text(low)}" if meta.get("low_open") else f" at least {_number_text(low)}"
    if whole and not meta.get("low_open") and not meta.get("high_open") and low is not None:
        return f" from {_number_text(low)} to {_number_text(high)}"
    left = "(" if meta.get("low_open") or low is None else "["
    right = ")" if meta.get("high_open") or high is None else "]"
    low_text = "-inf" if low is None else _number_text(low)
    high_text = "inf" if high is None else _number_text(high)
    return f" in {left}{low_text}, {high_text}{right}"


def _problem(kind: Any, meta: dict, value: Any) -> str | None:
    """What is wrong with ``value`` for a field of type ``kind`` and bounds ``meta``, or None."""
    kind, optional = _without_none(kind)
    if value is None:
        return None if optional else "must be set"
    if typing.get_origin(kind) is typing.Literal:
        allowed = typing.get_args(kind)
        if isinstance(value, bool) or value not in allowed:
            return f"must be one of {', '.join(map(str, allowed))}"
        return None
    if kind is bool:
        return None if isinstance(value, bool) else "must be True or False"
    if kind is str:
        return None if isinstance(value, str) else "must be text"
    if typing.get_origin(kind) is list:
        (item,) = typing.get_args(kind) or (Any,)
        if not isinstance(value, list) or (item is str and not all(isinstance(v, str) for v in value)):
            return "must be a list of strings" if item is str else "must be a list"
        return None
    if kind in (int, float):
        whole = kind is int
        if isinstance(value, bool) or not isinstance(value, numbers.Real if not whole else numbers.Integral):
            return f"must be a {'whole' if whole else 'finite'} number{_bound_text(meta, whole)}"
        if not whole and not math.isfinite(value):
            return f"must be a finite number{_bound_text(meta, whole)}"
        low, high = meta.get("low"), meta.get("high")
        below = low is not None and (value <= low if meta.get("low_open") else value < low)
        above = high is not None and (value >= high if meta.get("high_open") else value > high)
        if below or above:
            return f"must be a {'whole' if whole else 'finite'} number{_bound_text(meta, whole)}"
    return None


def field_problem(cls: type, name: str, value: Any) -> str | None:
    """What is wrong with ``value`` for field ``name`` of ``cls`` ("must be ..."), or None: the check of
    :func:`check_options` for one value (the studio's request fields use it)."""
    return _problem(_hints(cls)[name], _metadata(cls, name), value)


def check_options(config: Any, owner: str = "") -> None:
    """Check every field of a config dataclass against its type, choices and bounds.

    Raises:
        ConfigError: the first field whose value does not fit, named with ``owner`` (e.g. "lora option").
    """
    cls = type(config)
    hints = _hints(cls)
    for f in dataclasses.fields(config):
        if not f.init or f.name not in hints:
            continue
        value = getattr(config, f.name)
        problem = _problem(hints[f.name], _metadata(cls, f.name), value)
        if problem:
            where = f"{owner} {f.name}" if owner else f.name
            raise ConfigError(f"{where} {problem}, got {value!r}")


def _comma_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def argparse_type(cls: type, name: str):
    """The argparse ``type`` of a field: text converted to its type, then checked like the dataclass
    checks it (an out-of-bounds value is refused when the option is parsed)."""
    kind, _ = _without_none(_hints(cls)[name])
    meta = _metadata(cls, name)
    if typing.get_origin(kind) is list:
        return _comma_list
    if kind not in (int, float):
        return str

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            expected = "a whole number" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        problem = _problem(kind, meta, value)
        if problem:
            raise argparse.ArgumentTypeError(f"expected {problem.removeprefix('must be ')}, got {text}")
        return value

    parse.__name__ = "whole number" if kind is int else "number"
    return parse


def add_options(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls: type,
    *,
    flag_prefix: str = "",
    dest_prefix: str = "",
    from_preset: tuple[str, ...] = (),
    skip: tuple[str, ...] = (),
    unset: bool = False,
) -> None:
    """One option per field of ``cls``: ``--<flag_prefix><field>`` with its type, choices, default and
    help. Fields in ``from_preset`` default to None (the training preset fills them in); with
    ``unset`` every option defaults to None (only what is given is passed on)."""
    for f in dataclasses.fields(cls):
        if f.name in skip or not f.init:
            continue
        meta = _metadata(cls, f.name)
        help_text = meta.get("help", "")
        flag = "--" + flag_prefix + f.name.replace("_", "-")
        dest = dest_prefix + f.name
        default = None if f.default is _MISSING else f.default
        preset = f.name in from_preset
        shown = "the preset's" if preset else default
        if "default:" not in help_text:
            help_text = f"{help_text} (default: {shown})"
        kind, _ = _without_none(_hints(cls)[f.name])
        if kind is bool:
            parser.add_argument(
                flag, dest=dest, default=None if unset else default, action=argparse.BooleanOptionalAction,
                help=help_text,
            )  # fmt: skip
            continue
        is_list = typing.get_origin(kind) is list
        parser.add_argument(
            flag,
            dest=dest,
            type=argparse_type(cls, f.name),
            choices=choices_of(cls, f.name),
            metavar="A,B" if is_list else f.name.upper(),
            default=None if unset or preset else default,
            help=help_text,
        )
