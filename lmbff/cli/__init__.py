"""The ``lmbff`` command: one thin module per command group, each parsing arguments into the library's
objects and printing results. Building the parser imports no model library (``lmbff --help`` is
instant); each command imports what it needs when it runs."""

from __future__ import annotations

import argparse
import sys

from . import evaluate, events, search, studio, templates, training
from .common import USER_ERRORS, console, escape
from .training import _experiment_config

__all__ = ["_experiment_config", "build_parser", "main"]
GROUPS = (evaluate, training, search, events, templates, studio)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lmbff", description="Prompt-based few-shot learning (LM-BFF and more)."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args) or 0
    except USER_ERRORS as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        console.print(f"[bold red]error:[/] {escape(message)}", markup=True, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        console.print("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
