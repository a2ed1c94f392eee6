"""``distill``: a tuned prompt model's saved states teach a small student (lmbff.distill)."""

from __future__ import annotations

import argparse

from .common import _add_column_args, _add_dataclass_args, _columns, console, escape


def add_parsers(sub) -> None:
    from ..distill.config import DistillConfig

    p = sub.add_parser(
        "distill",
        help="train a small, fast student (a sentence encoder with a head) on a teacher's probabilities",
    )
    p.add_argument(
        "--teacher",
        action="append",
        required=True,
        metavar="STATE",
        help="a saved state (a run's state/ or a saved PromptClassifier); several: their probabilities "
        "are averaged (an ensemble, as PET does)",
    )
    p.add_argument(
        "--unlabelled",
        required=True,
        metavar="FILE",
        help="the texts the teacher labels: a data file (TSV, CSV, JSONL; a label column is ignored) or a "
        ".txt of one text per line",
    )
    p.add_argument("--labelled", default=None, metavar="FILE", help="labelled examples for --gold-weight")
    _add_column_args(p)
    p.add_argument("--out", required=True, help="the student folder to write (must not exist)")
    _add_dataclass_args(p, DistillConfig)
    p.set_defaults(handler=cmd_distill)

    p = sub.add_parser("compress", help="a student with int8 linear layers, for CPU inference (a new folder)")
    p.add_argument("--student", required=True, metavar="FOLDER", help="a student folder (lmbff distill)")
    p.add_argument("--int8", action="store_true", required=True, help="dynamic int8 linear layers")
    p.add_argument("--out", required=True, help="the compressed student folder to write (must not exist)")
    p.set_defaults(handler=cmd_compress)


def cmd_distill(args: argparse.Namespace) -> int:
    from dataclasses import fields

    from ..data import read_examples
    from ..distill.config import DistillConfig
    from ..distill.run import distill, teacher_from_states

    config = DistillConfig(**{f.name: getattr(args, f.name) for f in fields(DistillConfig)})
    teacher, task, record = teacher_from_states(args.teacher)  # every state checked before a model loads
    columns = _columns(args, task.fields)
    labelled = read_examples(args.labelled, task, columns=columns).examples if args.labelled else []
    result = distill(
        teacher, task, args.unlabelled, args.out, config, teacher_record=record, columns=columns,
        labelled=labelled,
    )  # fmt: skip
    console.print(
        f"student written to {escape(args.out)}: {result['unlabelled']['texts']} texts, agreement with the "
        f"teacher {result['agreement']:.3f}; teacher {result['seconds']['teacher_labelling']:.0f} s, "
        f"training {result['seconds']['training']:.0f} s, peak {result['peak_memory_mb']:,.0f} MB"
    )
    return 0


def cmd_compress(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..distill.compress import compress_student

    out = compress_student(args.student, args.out, "int8")
    size = lambda folder: sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file()) / 2**20  # noqa: E731
    console.print(
        f"int8 student written to {escape(str(out))}: {size(out):.0f} MB (was {size(args.student):.0f} MB)"
    )
    return 0
