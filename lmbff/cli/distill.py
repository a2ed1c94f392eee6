"""``distill``: a tuned prompt model's saved states teach a small student (lmbff.distill)."""

from __future__ import annotations

import argparse

from ..distill.config import Compression
from ..errors import ConfigError
from ..options import argparse_type
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

    p = sub.add_parser(
        "compress",
        help="a smaller or faster copy of a tuned model (a state on its base) or a student, in a new folder",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--student", metavar="FOLDER", help="a student folder (lmbff distill)")
    source.add_argument(
        "--state", metavar="FOLDER", help="a saved state: its base model with the state folded in"
    )
    form = p.add_mutually_exclusive_group()
    form.add_argument(
        "--int8", dest="weights", action="store_const", const="int8",
        help="dynamic int8 linear layers (a prompt model's transformer layers)",
    )  # fmt: skip
    form.add_argument("--bf16", dest="weights", action="store_const", const="bf16", help="bfloat16 weights")
    form.add_argument("--fp32", dest="weights", action="store_const", const="fp32", help="float32 weights")
    p.add_argument(
        "--prune", type=argparse_type(Compression, "prune"), default=0.0, metavar="FRACTION",
        help="zero this fraction of each linear layer's weights, smallest first (default 0)",
    )  # fmt: skip
    p.add_argument("--out", required=True, help="the folder to write (must not exist)")
    p.set_defaults(handler=cmd_compress)


def cmd_distill(args: argparse.Namespace) -> int:
    from dataclasses import fields

    from ..data import read_examples
    from ..distill.config import LAYER_STUDENT, DistillConfig
    from ..distill.run import distill, teacher_from_states

    config = DistillConfig(**{f.name: getattr(args, f.name) for f in fields(DistillConfig)})
    if config.student == LAYER_STUDENT and len(args.teacher) != 1:
        raise ConfigError(f"a {LAYER_STUDENT!r} student copies one teacher's model: give one --teacher")
    teacher, task, record = teacher_from_states(args.teacher)  # every state checked before a model loads
    columns = _columns(args, task.fields)
    labelled = read_examples(args.labelled, task, columns=columns).examples if args.labelled else []
    if config.student == LAYER_STUDENT:
        from ..distill.prompt_student import distill_layers

        result = distill_layers(
            args.teacher[0], args.unlabelled, args.out, config, columns=columns, labelled=labelled
        )
    else:
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
    from ..distill.compress import compress_state, compress_student, describe, folder_size_mb

    compression = Compression(weights=args.weights, prune=args.prune)
    if args.state:
        out = compress_state(args.state, args.out, compression)
        was = ""
    else:
        out = compress_student(args.student, args.out, compression)
        was = f" (was {folder_size_mb(args.student):.0f} MB)"
    console.print(f"written to {escape(str(out))}: {escape(describe(out))}{was}", soft_wrap=True)
    return 0
