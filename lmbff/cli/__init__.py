"""The ``lmbff`` command: one thin module per command group, each parsing arguments into the library's
objects and printing results. Building the parser imports no model library (``lmbff --help`` is
instant); each command imports what it needs when it runs."""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path

from ..logs import shown
from . import distill, evaluate, events, search, studio, templates, training
from .common import USER_ERRORS, console, escape
from .training import _experiment_config

__all__ = ["_experiment_config", "build_parser", "main"]
GROUPS = (evaluate, training, search, distill, events, templates, studio)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lmbff", description="Prompt-based few-shot learning (LM-BFF and more)."
    )
    parser.add_argument(
        "--debug", action="store_true", help="print the traceback of an internal error (a bug) in full"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with shown(True, sys.stdout):  # the library's notes (lmbff.logs) print with the command's output
            return args.handler(args) or 0
    except USER_ERRORS as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}", markup=True, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        console.print("interrupted")
        return 130
    except Exception as exc:  # anything that is not the user's input is a bug: say so, keep the trace
        if args.debug:
            raise
        where = _write_crash_log(argv if argv is not None else sys.argv[1:])
        console.print(
            f"[bold red]internal error[/] (a bug in lmbff, not in your input): "
            f"{escape(type(exc).__name__)}: {escape(str(exc))}\n"
            f"the traceback is in {escape(str(where))}; rerun with --debug to print it, and please report it",
            markup=True,
            soft_wrap=True,
        )
        return 3


def _write_crash_log(argv: list[str]) -> Path:
    """The current exception's traceback, with the command, in the cache folder's ``logs``."""
    from ..pretrained import cache_dir

    folder = cache_dir() / "logs"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"crash-{time.strftime('%Y%m%d-%H%M%S')}-{id(argv):x}.log"
        path.write_text(f"lmbff {' '.join(argv)}\n\n{traceback.format_exc()}", encoding="utf-8")
    except OSError:  # an unwritable cache: the trace goes to stderr instead
        traceback.print_exc()
        return Path("<stderr>")
    return path


if __name__ == "__main__":
    sys.exit(main())
