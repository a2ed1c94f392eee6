"""What the command groups share: the console, user errors, option types and common options, and
reading a task's data as the commands do."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from rich.console import Console
from rich.markup import escape  # noqa: F401 (used by the command modules)
from rich.table import Table

from prompts.library import TaskFile

from ..config import DEFAULT_PRECISION, PRECISIONS
from ..data import find_split, load_split
from ..errors import ConfigError, LmbffError
from ..options import add_options
from ..pretrained import DEFAULT_MODEL

# markup=False: data, labels, templates and paths print as written. With rich's default, "[mask]" in
# a row vanished and "[/]" raised a MarkupError; the few styled lines ask for markup and escape what
# they embed (``escape``).
console = Console(stderr=False, highlight=False, markup=False)
# What the command line reports as the user's error (one line, exit 2): the toolkit's own errors, and
# paths the user named that are missing, taken or not readable. Anything else is a bug (lmbff.cli.main).
USER_ERRORS = (
    LmbffError,
    FileNotFoundError,
    FileExistsError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
)


def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not seeds or any(not 0 <= s < 2**32 for s in seeds) or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"expected distinct seeds from 0 to 2**32-1, got {text!r}")
    return seeds


def _int_at_least(minimum: int, maximum: int | None = None):
    """An argparse type: a whole number in [minimum, maximum], checked when the option is parsed."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"at least {minimum}" + (f" and at most {maximum}" if maximum is not None else "")
            raise argparse.ArgumentTypeError(f"expected a whole number {bound}, got {value}")
        return value

    parse.__name__ = "whole number"
    return parse


def _finite_number(minimum: float, strict: bool):
    """An argparse type: a finite number above ``minimum`` (``strict``) or at least it."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value) or value < minimum or (strict and value == minimum):
            bound = f"above {minimum:g}" if strict else f"at least {minimum:g}"
            raise argparse.ArgumentTypeError(f"expected a finite number {bound}, got {text}")
        return value

    parse.__name__ = "number"
    return parse


positive_float = _finite_number(0, strict=True)  # learning rates
non_negative_float = _finite_number(0, strict=False)  # pauses
positive_int = _int_at_least(1)  # the benchmarks validate with these too
non_negative_int = _int_at_least(0)
_port = _int_at_least(1, 65535)


def _add_model_args(p: argparse.ArgumentParser, precision: bool = True) -> None:
    p.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help=f"'{DEFAULT_MODEL}' (the embedded default), a local folder, or a Hugging Face name",
    )
    p.add_argument(
        "--model-kind",
        choices=["masked", "causal"],
        default=None,
        help="override the masked/causal detection from the model's config",
    )
    if precision:
        _add_precision_arg(p, DEFAULT_PRECISION)


def _add_mode_arg(p: argparse.ArgumentParser) -> None:
    # The built-in modes are named without importing lmbff.scoring (torch): --help stays instant. A
    # plugin's mode (entry point group lmbff.scoring_modes) is checked when the run is configured.
    p.add_argument(
        "--mode",
        default=None,
        help="how a label word is scored (lmbff.scoring): mask (masked LMs), next_token or sequence "
        "(causal LMs), or an installed plugin's mode (default: chosen from the model kind and template)",
    )


def _add_precision_arg(p: argparse.ArgumentParser, default: str | None) -> None:
    shown = default or "the precision each state was scored in"
    p.add_argument(
        "--precision",
        choices=list(PRECISIONS),
        default=default,
        help="the weights' precision: fp32; bf16 (weights in bfloat16, trained weights kept in float32 "
        "while they train, scores in float32); auto: bf16 where the hardware multiplies it natively "
        f"(default: {shown})",
    )


def _add_column_args(p: argparse.ArgumentParser) -> None:
    """--text-column, --text-b-column, --label-column: a data file's own column names (no renaming)."""
    p.add_argument(
        "--text-column",
        type=_comma_list,
        default=None,
        help="the column(s) holding the text, one per task field in order (default: the field names)",
    )
    p.add_argument(
        "--text-b-column",
        default=None,
        help="the column of the second text (pair tasks), with --text-column naming the first",
    )
    p.add_argument(
        "--label-column",
        default="label",
        help="the column of gold labels (default: label); with it, metrics are reported",
    )


def _text_columns(args) -> list[str] | None:
    """The text columns named by --text-column and --text-b-column, in field order (None: none)."""
    text = list(args.text_column or [])
    if args.text_b_column:
        if len(text) != 1:
            raise ConfigError("--text-b-column goes with one --text-column, the first field's")
        text.append(args.text_b_column)
    return text or None


def _columns(args, fields) -> dict[str, str]:
    """File column -> field (or label) from --text-column, --text-b-column and --label-column."""
    from ..data import column_mapping

    return column_mapping(tuple(fields), _text_columns(args), args.label_column)


def _add_task_args(
    p: argparse.ArgumentParser, data_required: bool = True, task_required: bool = True
) -> None:
    p.add_argument(
        "--task",
        required=task_required,
        default=None,
        help="task name (templates/<task>.yaml, ./templates/<task>.yaml) or a path to a task YAML file",
    )
    p.add_argument(
        "--data-dir",
        required=data_required,
        default=None,
        help="folder with train/dev/test files (.tsv, .csv, .jsonl) or datasets folders",
    )
    p.add_argument(
        "--template",
        default=None,
        help="template name in the task file (default: its default); with --labels, the template text",
    )
    p.add_argument("--skip-bad", action="store_true", help="skip malformed rows (and report how many)")


def _add_dataclass_args(p, cls, prefix: str = "", from_preset: tuple[str, ...] = ()) -> None:
    """One option per field of a config dataclass: --<prefix><field> (:func:`lmbff.options.add_options`).
    Fields named in ``from_preset`` default to None: the training preset fills them in."""
    add_options(p, cls, flag_prefix=prefix, dest_prefix=prefix.replace("-", "_"), from_preset=from_preset)


def _comma_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _data_dir(args, task_file: TaskFile) -> Path:
    """--data-dir (or <data-dir>/<task>), else $LMBFF_DATA/<task>, else the task file's own folder."""
    from ..paths import task_data_dir

    return task_data_dir(task_file, args.data_dir)


def _has_split(data_dir, split: str) -> bool:
    """Whether a data folder holds this split (:func:`lmbff.data.find_split`)."""
    try:
        find_split(data_dir, split)
    except FileNotFoundError:
        return False
    return True


def _read(data_dir: Path, split: str, task_file: TaskFile, skip_bad: bool, require_label: bool = True):
    return say_notes(
        load_split(data_dir, split, task_file.task, skip_bad=skip_bad, require_label=require_label)
    )


def say_notes(report) -> list:
    """Print what a read skipped or kept (:meth:`lmbff.data.ReadReport.notes`); return its examples."""
    for note in report.notes():
        console.print(note, style="yellow", markup=False, soft_wrap=True)
    return report.examples


def _print_results(task, results, highlight: int = 0) -> None:
    names = sorted({m for r in results for m in r.metrics}, key=lambda m: (m != task.metric, m))
    table = Table(title=f"{task.name} ({task.metric})")
    table.add_column("method")
    for name in names:
        table.add_column(name, justify="right")
    for i, r in enumerate(results):
        style = "bold" if i == highlight else None
        table.add_row(r.name, *[f"{r.metrics[m]:.4f}" if m in r.metrics else "" for m in names], style=style)
    console.print(table)
