"""Commands that score without training, and their files: ``zero-shot``, ``predict``, ``report``,
``split``, ``upgrade-state``."""

from __future__ import annotations

import time
from pathlib import Path

from rich.table import Table

from prompts.library import TaskFile, load_task

from ..errors import ConfigError
from .common import (
    _add_column_args,
    _add_mode_arg,
    _add_model_args,
    _add_precision_arg,
    _add_task_args,
    _columns,
    _comma_list,
    _print_results,
    _seeds,
    _text_columns,
    console,
    positive_int,
    say_notes,
)


def add_parsers(sub) -> None:
    p = sub.add_parser(
        "zero-shot",
        help="score data with a cloze prompt, no training (a task file, or just --labels and --template)",
    )
    _add_task_args(p, data_required=False, task_required=False)
    _add_model_args(p)
    _add_mode_arg(p)
    p.add_argument(
        "--labels",
        type=_comma_list,
        default=None,
        help="no task file: the labels (World,Sports,...); --template is then the template text, "
        'e.g. "{{ text }} Topic: {{ mask }}." (default: "{{ text }} It was {{ mask }}.")',
    )
    p.add_argument(
        "--label-words",
        type=_comma_list,
        default=None,
        help="with --labels: one word per label, in the same order (default: the label names as words, "
        "credit_limit_change -> credit limit change)",
    )
    p.add_argument(
        "--multi-label",
        action="store_true",
        help="with --labels: several labels per example, each decided at probability 0.5 (no dev here)",
    )
    p.add_argument(
        "--label-delimiter",
        default=",",
        help="with --multi-label: the text between the labels of a TSV or CSV row (default ',')",
    )
    p.add_argument(
        "--data-file", default=None, help="one data file (.csv, .tsv, .jsonl) instead of --data-dir"
    )
    _add_column_args(p)
    p.add_argument("--split", default="test", help="split name or file in --data-dir (default: test)")
    p.add_argument("--out", default=None, help="output folder (default: runs/zero-shot/<task>)")
    p.add_argument(
        "--max-length", type=positive_int, default=128, help="token budget per prompt (LM-BFF: 128)"
    )
    p.add_argument("--batch-size", type=positive_int, default=16)
    p.add_argument("--limit", type=positive_int, default=None, help="score only the first N examples")
    p.add_argument(
        "--calibrate",
        action="store_true",
        help="make contextual calibration the headline metric (both are always reported)",
    )
    p.set_defaults(handler=cmd_zero_shot)

    p = sub.add_parser(
        "predict", help="score data with trained states on one shared base model (bit-identical to the run)"
    )
    p.add_argument("--state", action="append", required=True, help="a run's state/ folder; repeat for more")
    p.add_argument("--data-dir", default=None, help="data to score (default: each state's own k-shot folder)")
    p.add_argument(
        "--data-file", default=None, help="one file to score (.csv, .tsv, .jsonl) instead of --data-dir"
    )
    _add_column_args(p)
    p.add_argument("--split", default="test")
    p.add_argument("--model", default=None, help="base model (default: the one each state was trained on)")
    _add_precision_arg(p, None)
    p.add_argument("--out", required=True, help="output folder: <run name>/predictions.jsonl per state")
    p.set_defaults(handler=cmd_predict)

    p = sub.add_parser("report", help="merge runs: mean (std) over seeds per method, markdown + JSON + plot")
    p.add_argument("runs", nargs="+", help="run folders (searched for metrics.json)")
    p.add_argument(
        "--out", default=None, help="folder for report.md/json/png (default: a new runs/report-<time>/)"
    )
    p.set_defaults(handler=cmd_report)

    p = sub.add_parser("split", help="write LM-BFF k-shot splits (K per class for train and dev, per seed)")
    _add_task_args(p, data_required=False)
    p.add_argument(
        "--data-file", default=None, help="one file of labelled rows instead of --data-dir's train"
    )
    p.add_argument("--test-file", default=None, help="with --data-file: a test file copied into each split")
    _add_column_args(p)
    p.add_argument("--k", type=positive_int, default=16)
    p.add_argument("--seeds", type=_seeds, default=[13, 21, 42, 87, 100])
    p.add_argument("--out", required=True, help="output folder; gets <k>-<seed>/ per seed")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace split files already in --out that would change (refused otherwise, naming them)",
    )
    p.set_defaults(handler=cmd_split)

    p = sub.add_parser(
        "upgrade-state",
        help="re-save a state written by lmbff 0.1 as a self-contained one (from the task file it was "
        "trained with)",
    )
    p.add_argument("--state", required=True, help="the state folder")
    p.add_argument("--task", required=True, help="the task file the state was trained with")
    p.add_argument("--model", default=None, help="its base model (default: the one the state names)")
    p.set_defaults(handler=cmd_upgrade_state)


def _zero_shot_task(args) -> TaskFile:
    """The task file named by --task, or one made from --labels and --template (no YAML)."""
    from prompts.library import task_file_from_labels

    if args.labels:
        if args.task:
            raise ConfigError("give --task (a task file) or --labels (no task file), not both")
        template = args.template or "{{ text }} It was {{ mask }}."
        return task_file_from_labels(
            args.labels,
            template,
            args.label_words,
            name="zero-shot",
            multi_label=args.multi_label,
            label_delimiter=args.label_delimiter if args.multi_label else None,
        )
    if not args.task:
        raise ConfigError("give --task (a task file), or --labels and --template to classify without one")
    if args.label_words:
        raise ConfigError("--label-words goes with --labels; a task file has its own label words")
    if args.multi_label:
        raise ConfigError("--multi-label goes with --labels; a task file says multi_label: true itself")
    return load_task(args.task)


def _zero_shot_examples(args, task_file: TaskFile) -> list:
    from ..data import load_split, read_examples

    task = task_file.task
    columns = _columns(args, task.fields)
    if args.data_file:
        return say_notes(
            read_examples(args.data_file, task, skip_bad=args.skip_bad, require_label=False, columns=columns)
        )
    if not args.data_dir:
        raise ConfigError("give --data-dir (a folder with the split) or --data-file (one file)")
    return say_notes(
        load_split(
            args.data_dir, args.split, task, skip_bad=args.skip_bad, require_label=False, columns=columns
        )
    )


def cmd_zero_shot(args) -> int:
    from ..data import check_renders
    from ..evaluate import write_zero_shot, zero_shot
    from ..model import PromptModel
    from ..pretrained import load_model

    task_file = _zero_shot_task(args)
    task = task_file.task
    prompt = task_file.prompt(None if args.labels else args.template)
    examples = _zero_shot_examples(args, task_file)
    if args.limit:
        examples = examples[: args.limit]
    examples, skipped = check_renders(examples, prompt.template, skip_bad=args.skip_bad)  # before loading
    if skipped:
        console.print(f"skipped {len(skipped)} rows the template cannot render; first: {skipped[0]}")
    out = Path(args.out or Path("runs") / "zero-shot" / task.name)
    if (out / "results.json").exists():  # as train does: a finished run is never overwritten
        raise FileExistsError(f"{out} already holds a zero-shot run; choose another --out")
    with console.status(f"loading {args.model}..."):
        loaded = load_model(args.model, kind=args.model_kind, precision=args.precision)
    pm = PromptModel.for_task(
        loaded.model, loaded.tokenizer, task, prompt, kind=loaded.kind, max_length=args.max_length,
        mode=args.mode,
    )  # fmt: skip
    source = args.data_file or f"{args.data_dir} ({args.split})"
    console.print(
        f"{task.name}: {len(examples)} examples from {source}; template {prompt.template.text!r}; "
        f"labels {list(task.labels)}; {loaded.kind} LM, scoring mode {pm.mode}"
    )
    from ..memory import PeakMemory

    memory = PeakMemory()
    run, log_scores = zero_shot(
        pm,
        task,
        examples,
        batch_size=args.batch_size,
        model_name=args.model,
        template_name=prompt.name,
        split=args.split if not args.data_file else str(args.data_file),
    )
    run.peak_memory_mb = memory.peak_mb()
    from ..distributed import is_main_process

    if not is_main_process():  # under a launcher every process has every score; the main one writes
        return 0
    write_zero_shot(run, task, examples, log_scores, out)
    if run.results:
        _print_results(task, run.results, highlight=1 if args.calibrate else 0)
    else:
        _print_label_counts(task, run)
    console.print(f"{run.examples_per_second:.1f} examples/s; results in {out}/results.json and results.md")
    return 0


def _print_label_counts(task, run) -> None:
    table = Table(title=f"{task.name}: predicted labels (no gold labels in the data)")
    for column in ("label", "raw", "calibrated"):
        table.add_column(column, justify="right" if column != "label" else "left")
    for label in task.labels:
        table.add_row(label, str(run.label_counts["raw"][label]), str(run.label_counts["calibrated"][label]))
    console.print(table)


def cmd_predict(args) -> int:
    from ..predict import predict_with_states

    if args.data_dir and args.data_file:
        raise ConfigError("give --data-dir or --data-file, not both")
    summaries = predict_with_states(
        args.state,
        args.out,
        data_dir=str(Path(args.data_file).parent) if args.data_file else args.data_dir,
        split=args.data_file or args.split,
        text_columns=_text_columns(args),
        label_column=args.label_column,
        model=args.model,
        precision=args.precision,
    )
    from ..distributed import is_main_process

    if not is_main_process():
        return 0
    table = Table(title=f"predictions ({args.split})")
    for column in ("state", "task", "examples", "metric", "out"):
        table.add_column(column)
    for s in summaries:
        metric = f"{s['metric']} {s['metrics'][s['metric']]:.4f}" if "metrics" in s else "(unlabelled)"
        table.add_row(s["state"], s["task"], str(s["examples"]), metric, s["out"])
    console.print(table)
    return 0


def cmd_report(args) -> int:
    from ..report import find_metrics, summarize, write_report

    runs = find_metrics(args.runs)
    if not runs:
        raise FileNotFoundError(f"no metrics.json under {', '.join(args.runs)}")
    rows = summarize(runs)
    out = Path(args.out) if args.out else Path("runs") / f"report-{time.strftime('%Y%m%d-%H%M%S')}"
    inside = [r for r in map(Path, args.runs) if out.resolve().is_relative_to(r.resolve())]
    if inside:
        raise ConfigError(
            f"--out {out} is inside the run folder {inside[0]}; a report goes beside runs, not in one"
        )
    written = write_report(rows, out)
    table = Table(title="mean (std) over seeds, test")
    for column in ("task", "method", "backend", "metric", "mean (std)", "seeds"):
        table.add_column(column)
    for r in rows:
        m = r["metric"]
        table.add_row(
            r["task"],
            r["method"],
            r["backend"],
            m,
            f"{100 * r['mean'][m]:.1f} ({100 * r['std'][m]:.1f})",
            ",".join(map(str, r["seeds"])),
        )
    console.print(table)
    console.print("report: " + ", ".join(map(str, written)))
    return 0


def cmd_split(args) -> int:
    from ..splits import make_splits

    task_file = load_task(args.task)
    if bool(args.data_dir) == bool(args.data_file):
        raise ConfigError(
            "give --data-dir (a folder with a train file) or --data-file (one file), one of them"
        )
    if args.test_file and not args.data_file:
        raise ConfigError("--test-file goes with --data-file (a --data-dir's own test file is copied)")
    written = make_splits(
        task_file.task,
        args.data_dir,
        args.out,
        k=args.k,
        seeds=args.seeds,
        skip_bad=args.skip_bad,
        overwrite=args.overwrite,
        train_file=args.data_file,
        test_file=args.test_file,
        columns=_columns(args, task_file.task.fields),
    )
    for split in written:
        console.print(
            f"seed {split.seed}: {split.folder} (train, dev{', test' if split.test else ''}, manifest.json)"
        )
    return 0


def cmd_upgrade_state(args) -> int:
    from ..state import upgrade_legacy_state

    path = upgrade_legacy_state(args.state, args.task, args.model)
    console.print(f"re-saved {path}: the state now carries its task, template and label words")
    return 0
