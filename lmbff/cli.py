"""The ``lmbff`` command: thin; parses arguments into the library's objects and prints results."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import fields
from pathlib import Path

from rich.console import Console
from rich.table import Table

from prompts.library import TaskFile, TaskFileError, iter_task_files, load_task, template_dirs
from prompts.template import TemplateError

from .data import DataError, load_split
from .pretrained import DEFAULT_MODEL, ModelNotFound, load_tokenizer

console = Console(stderr=False, highlight=False)
USER_ERRORS = (
    DataError,
    TaskFileError,
    TemplateError,
    ModelNotFound,
    FileNotFoundError,
    FileExistsError,
    KeyError,
    ValueError,  # includes state.StateError
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


_positive_int = _int_at_least(1)
_non_negative_int = _int_at_least(0)
_port = _int_at_least(1, 65535)


def _add_model_args(p: argparse.ArgumentParser) -> None:
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
    p.add_argument("--template", default=None, help="template name in the task file (default: its default)")
    p.add_argument("--skip-bad", action="store_true", help="skip malformed rows (and report how many)")


def _add_experiment_args(p: argparse.ArgumentParser) -> None:
    """Options generated from the TrainingArguments and DemonstrationConfig dataclasses."""
    from .config import DemonstrationConfig, TrainingArguments
    from .defaults import DEFAULT_PRESET, PRESETS
    from .tuning import backend_names

    p.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default=DEFAULT_PRESET,
        help="the recipe that --backend, --learning-rate, --max-steps and --eval-every default to: "
        + "; ".join(f"{name}: {preset.description}" for name, preset in PRESETS.items())
        + f" (default: {DEFAULT_PRESET})",
    )
    p.add_argument(
        "--backend",
        default=None,
        help=f"which parameters train: {', '.join(backend_names())}, or several joined by + (prefix+ln) "
        "(default: the preset's)",
    )
    _add_backend_options(p)
    p.add_argument("--max-length", type=_positive_int, default=128, help="token budget per prompt")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    p.add_argument("--test-split", default="test")
    p.add_argument(
        "--template-ensemble",
        default=None,
        help="names (a,b,c) or topN (auto_1..auto_N from search-templates): one model per template, averaged",
    )
    _add_dataclass_args(p, TrainingArguments)
    _add_dataclass_args(p, DemonstrationConfig, "demo-")
    # These three come from the preset unless given (help says so).
    for action in p._actions:
        if action.dest in ("max_steps", "eval_every", "learning_rate"):
            action.default = None
            action.help = action.help.rsplit(" (default:", 1)[0] + " (default: the preset's)"


def _add_dataclass_args(p, cls, prefix: str = "") -> None:
    """One option per field of a config dataclass: --<prefix><field>, its type, default and help."""
    import typing

    hints = typing.get_type_hints(cls)
    for f in fields(cls):
        default = f.default
        option = "--" + prefix + f.name.replace("_", "-")
        dest = prefix.replace("-", "_") + f.name
        help_text = f.metadata.get("help", "")
        if isinstance(default, bool):
            p.add_argument(
                option, dest=dest, default=default, action=argparse.BooleanOptionalAction, help=help_text
            )
            continue
        choices = (
            typing.get_args(hints[f.name]) if typing.get_origin(hints[f.name]) is typing.Literal else None
        )
        kind = {int: int, float: float, str: str}.get(type(default), float)
        p.add_argument(
            option,
            dest=dest,
            type=kind,
            default=default,
            choices=choices,
            help=f"{help_text} (default: {default})",
        )


def _add_backend_options(p: argparse.ArgumentParser) -> None:
    """--<backend>-<option> for every option of every registered backend (e.g. --prefix-length)."""
    from .tuning import backend_names, get_config_class

    group = p.add_argument_group("backend options (apply to the backends named in --backend)")
    for backend in backend_names():
        for f in fields(get_config_class(backend)):
            if f.name == "learning_rate":  # --learning-rate sets it for every part
                continue
            is_list = "list" in str(f.type)
            kind = _comma_list if is_list else {int: int, float: float, str: str}.get(type(f.default), str)
            group.add_argument(
                f"--{backend}-{f.name.replace('_', '-')}",
                dest=f"backend__{backend}__{f.name}",
                metavar="A,B" if is_list else f.name.upper(),
                type=kind,
                default=None,
                help=f.metadata.get("help", "")
                + ("" if "default:" in f.metadata.get("help", "") else f" (default: {f.default})"),
            )


def _comma_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _backend_options(args) -> dict[str, dict]:
    options: dict[str, dict] = {}
    for dest, value in vars(args).items():
        if dest.startswith("backend__") and value is not None:
            _, backend, name = dest.split("__", 2)
            options.setdefault(backend, {})[name] = value
    return options


def _experiment_config(args, method: str, data_dir: str, out: str, seed: int | None = None):
    from .config import DemonstrationConfig, TrainingArguments
    from .defaults import resolve
    from .ensemble import resolve_ensemble
    from .experiment import ExperimentConfig

    backend, learning_rate, max_steps, eval_every = resolve(
        args.preset, args.backend, args.learning_rate, args.max_steps, args.eval_every
    )
    values = {f.name: getattr(args, f.name) for f in fields(TrainingArguments)}
    values.update(max_steps=max_steps, eval_every=eval_every)
    if method in ("prompt", "prompt-demos"):
        values["learning_rate"] = learning_rate
    else:  # the baselines: finetune trains everything (the check refuses another backend), zero-shot nothing
        backend = (args.backend or "full") if method == "finetune" else "full"
    training = TrainingArguments(**values)
    if seed is not None:
        training.seed = seed
    demos = DemonstrationConfig(
        **{f.name: getattr(args, "demo_" + f.name) for f in fields(DemonstrationConfig)}
    )
    return ExperimentConfig(
        task=args.task,
        data_dir=str(data_dir),
        out=str(out),
        method=method,
        model=args.model,
        model_kind=args.model_kind,
        template=args.template,
        # the baselines have nothing to choose: zero-shot trains nothing, finetune trains everything
        backend=backend,
        backend_options=_backend_options(args) if method in ("prompt", "prompt-demos") else {},
        max_length=args.max_length,
        training=training,
        demonstrations=demos,
        test_split=args.test_split,
        skip_bad=args.skip_bad,
        template_ensemble=(
            resolve_ensemble(args.template_ensemble, load_task(args.task)) if args.template_ensemble else []
        ),
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lmbff", description="Prompt-based few-shot learning (LM-BFF and more)."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "zero-shot",
        help="score data with a cloze prompt, no training (a task file, or just --labels and --template)",
    )
    _add_task_args(p, data_required=False, task_required=False)
    _add_model_args(p)
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
        help="with --labels: one word per label, in the same order (default: the labels themselves)",
    )
    p.add_argument(
        "--data-file", default=None, help="one data file (.csv, .tsv, .jsonl) instead of --data-dir"
    )
    p.add_argument(
        "--text-column",
        type=_comma_list,
        default=None,
        help="the column(s) holding the text, one per template field in order (default: the field names)",
    )
    p.add_argument(
        "--label-column",
        default="label",
        help="the column of gold labels, when the file has one (then metrics are reported)",
    )
    p.add_argument("--split", default="test", help="split name or file in --data-dir (default: test)")
    p.add_argument("--out", default=None, help="output folder (default: runs/zero-shot/<task>)")
    p.add_argument(
        "--max-length", type=_positive_int, default=128, help="token budget per prompt (LM-BFF: 128)"
    )
    p.add_argument("--batch-size", type=_positive_int, default=16)
    p.add_argument("--limit", type=_positive_int, default=None, help="score only the first N examples")
    p.add_argument(
        "--calibrate",
        action="store_true",
        help="make contextual calibration the headline metric (both are always reported)",
    )

    p = sub.add_parser("split", help="write LM-BFF k-shot splits (K per class for train and dev, per seed)")
    _add_task_args(p)
    p.add_argument("--k", type=_positive_int, default=16)
    p.add_argument("--seeds", type=_seeds, default=[13, 21, 42, 87, 100])
    p.add_argument("--out", required=True, help="output folder; gets <k>-<seed>/ per seed")

    p = sub.add_parser("train", help="tune on a k-shot split's train, select on dev, score test")
    _add_task_args(p)
    _add_model_args(p)
    _add_experiment_args(p)
    p.add_argument("--method", choices=["prompt", "prompt-demos", "finetune", "zero-shot"], default="prompt")
    p.add_argument("--demonstrations", action="store_true", help="same as --method prompt-demos (LM-BFF)")
    p.add_argument("--out", required=True, help="output folder (metrics, results, state, config)")

    p = sub.add_parser(
        "run", help="LM-BFF's protocol: splits per seed, one run per seed and method, a report"
    )
    _add_task_args(p)
    _add_model_args(p)
    _add_experiment_args(p)
    p.add_argument("--k", type=_positive_int, default=16)
    p.add_argument("--seeds", type=_seeds, default=[13, 21, 42, 87, 100])
    p.add_argument(
        "--methods", default="prompt", help="comma-separated: zero-shot,finetune,prompt,prompt-demos"
    )
    p.add_argument("--out", required=True, help="output folder: <method>/seed-<seed>/ per run, report.md")

    p = sub.add_parser(
        "predict", help="score data with trained states on one shared base model (bit-identical to the run)"
    )
    p.add_argument("--state", action="append", required=True, help="a run's state/ folder; repeat for more")
    p.add_argument("--data-dir", default=None, help="data to score (default: each state's own k-shot folder)")
    p.add_argument("--split", default="test")
    p.add_argument("--model", default=None, help="base model (default: the one each state was trained on)")
    p.add_argument("--out", required=True, help="output folder: <run name>/predictions.jsonl per state")

    p = sub.add_parser(
        "search-labels", help="automatic label words (LM-BFF): rank words at the slot, then assignments"
    )
    _add_task_args(p)
    _add_model_args(p)
    from .config import LabelSearchConfig

    _add_dataclass_args(p, LabelSearchConfig)
    p.add_argument("--max-length", type=_positive_int, default=128)
    p.add_argument(
        "--rerank-steps", type=_positive_int, default=100, help="tuning steps per re-ranked assignment"
    )
    p.add_argument("--rerank-backend", default="full", help="tuning backend for re-ranking")
    p.add_argument("--out", required=True, help="labels.json, labels.md and verbalizer.yaml go here")

    p = sub.add_parser(
        "search-templates", help="automatic templates: T5 span filling (LM-BFF) or a pool, ranked on dev"
    )
    _add_task_args(p)
    _add_model_args(p)
    from .config import TemplateSearchConfig

    _add_dataclass_args(p, TemplateSearchConfig)
    p.add_argument("--generator", default=None, help="a T5-style model folder or name (default: pool mode)")
    p.add_argument(
        "--pool", default=None, help="YAML list of candidate templates (default: the built-in pool)"
    )
    p.add_argument("--max-length", type=_positive_int, default=128)
    p.add_argument("--out", required=True, help="templates.json, templates.md and templates.yaml go here")

    p = sub.add_parser(
        "events", help="zero-shot event argument roles with prompts and global constraints (GCP)"
    )
    p.add_argument("--data", required=True, help="OneIE JSON lines: tokens, entity_mentions, event_mentions")
    p.add_argument("--ontology", default=None, help="ontology YAML (default: the bundled ACE 2005)")
    p.add_argument(
        "--ontology-from-data", action="store_true", help="event types and roles as the data uses them"
    )
    p.add_argument("--prompts", default=None, help="event prompts YAML (default: templates/events.yaml)")
    _add_model_args(p)
    p.add_argument("--method", choices=["exact", "greedy"], default="exact")
    p.add_argument("--no-cross-task", action="store_true")
    p.add_argument("--no-cross-argument", action="store_true")
    p.add_argument("--no-cross-event", action="store_true")
    p.add_argument("--ablation", action="store_true", help="every constraint setting, exact and greedy")
    p.add_argument("--limit", type=_positive_int, default=None, help="only the first N sentences")
    p.add_argument("--max-length", type=_positive_int, default=256)
    p.add_argument(
        "--after-words",
        type=_non_negative_int,
        default=None,
        help="keep N words after the argument (default: all, GCP)",
    )
    p.add_argument("--out", required=True)

    p = sub.add_parser("report", help="merge runs: mean (std) over seeds per method, markdown + JSON + plot")
    p.add_argument("runs", nargs="+", help="run folders (searched for metrics.json)")
    p.add_argument("--out", default=None, help="where report.md goes (default: the first folder)")

    p = sub.add_parser("demo", help="the main job: zero-shot, then LN-tuning on 16 examples per class")
    _add_model_args(p)
    p.add_argument("--steps", type=_positive_int, default=30, help="LN-tuning steps")
    p.add_argument("--out", default="runs/demo")

    p = sub.add_parser("studio", help="a local web page to write templates against real data and a model")
    _add_model_args(p)
    p.add_argument("--task", default=None, help="the task the page opens with")
    p.add_argument(
        "--data-dir", default=None, help="data folder (or a folder of task folders, e.g. ../shared/data)"
    )
    p.add_argument("--workspace", default="studio-workspace", help="where saved task files go")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (the page has no login: loopback by default)",
    )
    p.add_argument("--port", type=_port, default=8765)
    p.add_argument("--max-length", type=_positive_int, default=256)

    templates = sub.add_parser("templates", help="write, lint, render and preview templates").add_subparsers(
        dest="templates_command", required=True
    )
    p = templates.add_parser("lint", help="validate task files (all of templates/ when none are given)")
    p.add_argument("files", nargs="*")
    p.add_argument("--model", default=None, help="also check how label words tokenize for this model")
    p.add_argument("--model-kind", choices=["masked", "causal"], default=None)
    p.add_argument(
        "--data-dir", default=None, help="also check that the data has the fields and labels each task reads"
    )

    p = templates.add_parser(
        "preview", help="real examples through a template and a model: label probabilities, prediction"
    )
    _add_task_args(p, data_required=False)
    _add_model_args(p)
    p.add_argument("--split", default="train")
    p.add_argument("--n", type=_positive_int, default=8)
    p.add_argument("--max-length", type=_positive_int, default=128)

    p = templates.add_parser(
        "new",
        help="write a commented task file to start from (templates/<task>.yaml: --task <task> finds it)",
    )
    p.add_argument("--task", required=True, help="the task's name")
    p.add_argument("--fields", default=None, help="comma-separated data columns, e.g. text_a,text_b")
    p.add_argument("--labels", default=None, help="comma-separated labels")
    p.add_argument(
        "--from-labels",
        default=None,
        help="comma-separated labels that are their own label words (as zero-shot --labels); the fields "
        "come from --template",
    )
    p.add_argument(
        "--template",
        default=None,
        help='with --from-labels: the template text (default: "{{ text }} It was {{ mask }}.")',
    )
    p.add_argument("--metric", default="accuracy")
    p.add_argument("--out", default=None, help="default: templates/<task>.yaml (where --task <task> looks)")

    p = sub.add_parser(
        "upgrade-state",
        help="re-save a state written by lmbff 0.1 as a self-contained one (from the task file it was "
        "trained with)",
    )
    p.add_argument("--state", required=True, help="the state folder")
    p.add_argument("--task", required=True, help="the task file the state was trained with")
    p.add_argument("--model", default=None, help="its base model (default: the one the state names)")

    p = templates.add_parser("render", help="show rendered prompts for real examples")
    _add_task_args(p, data_required=False)
    p.add_argument("--split", default="train")
    p.add_argument("--n", type=_positive_int, default=3)
    p.add_argument("--model", default=None, help="also show token counts and truncation for this model")
    p.add_argument("--model-kind", choices=["masked", "causal"], default=None)
    p.add_argument("--max-length", type=_positive_int, default=128)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = {
        "zero-shot": cmd_zero_shot,
        "split": cmd_split,
        "demo": cmd_demo,
        "train": cmd_train,
        "run": cmd_run,
        "report": cmd_report,
        "predict": cmd_predict,
        "search-labels": cmd_search_labels,
        "events": cmd_events,
        "search-templates": cmd_search_templates,
        "studio": cmd_studio,
        "upgrade-state": cmd_upgrade_state,
        "templates": lambda a: {
            "lint": cmd_lint,
            "render": cmd_render,
            "preview": cmd_preview,
            "new": cmd_new,
        }[a.templates_command](a),
    }[args.command]
    try:
        return handler(args) or 0
    except USER_ERRORS as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        console.print(f"[bold red]error:[/] {message}", markup=True, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        console.print("interrupted")
        return 130


# ---- helpers ------------------------------------------------------------------------------------
def _data_dir(args, task_file: TaskFile) -> Path:
    """--data-dir (or <data-dir>/<task>), else $LMBFF_DATA/<task>, else the task file's own folder."""
    from .paths import task_data_dir

    return task_data_dir(task_file, args.data_dir)


def _read(data_dir: Path, split: str, task_file: TaskFile, skip_bad: bool, require_label: bool = True):
    report = load_split(data_dir, split, task_file.task, skip_bad=skip_bad, require_label=require_label)
    if report.skipped:
        console.print(
            f"[yellow]skipped {len(report.skipped)} malformed rows of {report.path}[/]; first: "
            f"{report.skipped[0]}"
        )
    if report.blank:
        console.print(
            f"[yellow]{report.blank} example(s) of {report.path} have a blank text[/]: kept, scored with the "
            "template's own words around it (as LM-BFF does)"
        )
    return report.examples


# ---- commands -----------------------------------------------------------------------------------
def _zero_shot_task(args) -> TaskFile:
    """The task file named by --task, or one made from --labels and --template (no YAML)."""
    from prompts.library import task_file_from_labels

    if args.labels:
        if args.task:
            raise ValueError("give --task (a task file) or --labels (no task file), not both")
        template = args.template or "{{ text }} It was {{ mask }}."
        return task_file_from_labels(args.labels, template, args.label_words, name="zero-shot")
    if not args.task:
        raise ValueError("give --task (a task file), or --labels and --template to classify without one")
    if args.label_words:
        raise ValueError("--label-words goes with --labels; a task file has its own label words")
    return load_task(args.task)


def _zero_shot_examples(args, task_file: TaskFile) -> list:
    from .data import read_examples

    task = task_file.task
    if args.data_file:
        columns = {args.label_column: "label"} if args.label_column != "label" else {}
        if args.text_column:
            if len(args.text_column) != len(task.fields):
                raise ValueError(
                    f"--text-column names {len(args.text_column)} column(s); the template reads "
                    f"{len(task.fields)} field(s) {list(task.fields)}"
                )
            columns.update(dict(zip(args.text_column, task.fields, strict=True)))
        report = read_examples(
            args.data_file, task, skip_bad=args.skip_bad, require_label=False, columns=columns
        )
        if report.skipped:
            console.print(f"[yellow]skipped {len(report.skipped)} malformed rows of {report.path}[/]")
        return report.examples
    if not args.data_dir:
        raise ValueError("give --data-dir (a folder with the split) or --data-file (one file)")
    return _read(Path(args.data_dir), args.split, task_file, args.skip_bad, require_label=False)


def cmd_zero_shot(args) -> int:
    from .evaluate import write_zero_shot, zero_shot
    from .model import PromptModel
    from .pretrained import load_model

    task_file = _zero_shot_task(args)
    task = task_file.task
    prompt = task_file.prompt(None if args.labels else args.template)
    examples = _zero_shot_examples(args, task_file)
    if args.limit:
        examples = examples[: args.limit]
    with console.status(f"loading {args.model}..."):
        loaded = load_model(args.model, kind=args.model_kind)
    pm = PromptModel.for_task(
        loaded.model, loaded.tokenizer, task, prompt, kind=loaded.kind, max_length=args.max_length
    )
    source = args.data_file or f"{args.data_dir} ({args.split})"
    console.print(
        f"{task.name}: {len(examples)} examples from {source}; template {prompt.template.text!r}; "
        f"labels {list(task.labels)}; {loaded.kind} LM, scoring mode {pm.mode}"
    )
    run, log_scores = zero_shot(
        pm,
        task,
        examples,
        batch_size=args.batch_size,
        model_name=args.model,
        template_name=prompt.name,
        split=args.split if not args.data_file else str(args.data_file),
    )
    out = Path(args.out or Path("runs") / "zero-shot" / task.name)
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


def _print_plan(configs: list, preset: str) -> None:
    """What will run and how long it should take, before anything loads (main process only)."""
    from .defaults import plan_text

    if os.environ.get("RANK", "0") == "0":
        console.print(plan_text(configs, preset), soft_wrap=True)


def cmd_train(args) -> int:
    from .runs import run

    method = "prompt-demos" if args.demonstrations else args.method
    config = _experiment_config(args, method, args.data_dir, args.out)
    _print_plan([config], args.preset)
    if args.resume:
        from .experiment import resume_note

        note = resume_note(args.out)
        if note:
            console.print(f"[yellow]{note}[/]")
    metrics = run(config, resume=args.resume)
    if os.environ.get("RANK", "0") != "0":
        return 0  # data-parallel workers: the main process reports
    _print_metrics([metrics])
    console.print(f"results in {args.out}/metrics.json, results.md, predictions.jsonl and state/")
    return 0


def _print_metrics(runs: list[dict]) -> None:
    table = Table(title="test")
    for column in ("task", "method", "seed", "metric", "test", "dev", "best step", "seconds"):
        table.add_column(column)
    for m in runs:
        table.add_row(
            m["task"],
            m["method"],
            str(m["seed"]),
            m["metric"],
            f"{m['test'][m['metric']]:.4f}",
            f"{m['dev'][m['metric']]:.4f}" if "dev" in m else "",
            str(m.get("best_step", "")),
            f"{m['seconds']:.0f}",
        )
    console.print(table)


def cmd_run(args) -> int:
    from .experiment import experiment_folder
    from .report import find_metrics, summarize, write_report
    from .runs import run
    from .splits import make_splits, split_folder

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    task_file = load_task(args.task)
    data_dir, out = Path(args.data_dir), Path(args.out)
    runs = []
    _print_plan(
        [_experiment_config(args, m, str(data_dir), "", s) for s in args.seeds for m in methods], args.preset
    )
    for seed in args.seeds:
        try:  # LM-BFF's own k-shot/<k>-<seed>/ folders, or folders made by `lmbff split`
            folder = split_folder(data_dir, args.k, seed)
        except FileNotFoundError:
            folder = out / "splits" / f"{args.k}-{seed}"
            if not (folder / "manifest.json").exists():
                make_splits(
                    task_file.task, data_dir, out / "splits", k=args.k, seeds=[seed], skip_bad=args.skip_bad
                )
        for method in methods:
            console.print(f"[bold]{task_file.task.name}[/] seed {seed}, {method} (split {folder})")
            config = _experiment_config(args, method, str(folder), "", seed)
            config.out = str(experiment_folder(out, method, seed, config.backend))
            runs.append(run(config, resume=True))
    _print_metrics(runs)
    # Every finished run under --out, not only this invocation's: seeds run as separate processes
    # into one folder end with one report.
    written = write_report(summarize(find_metrics([out])), out)
    console.print("report: " + ", ".join(map(str, written)))
    return 0


def cmd_predict(args) -> int:
    from .predict import predict_with_states

    summaries = predict_with_states(
        args.state, args.out, data_dir=args.data_dir, split=args.split, model=args.model
    )
    table = Table(title=f"predictions ({args.split})")
    for column in ("state", "task", "examples", "metric", "out"):
        table.add_column(column)
    for s in summaries:
        metric = f"{s['metric']} {s['metrics'][s['metric']]:.4f}" if "metrics" in s else "(unlabelled)"
        table.add_row(s["state"], s["task"], str(s["examples"]), metric, s["out"])
    console.print(table)
    return 0


def cmd_search_labels(args) -> int:
    from prompts.label_search import verbalizer_yaml

    from .config import TrainingArguments
    from .io import atomic_write_json, atomic_write_text, markdown_table
    from .label_search import LabelSearchConfig, finetune_reranker, search_label_words
    from .model import PromptModel
    from .pretrained import load_model
    from .tuning import make_config

    task_file = load_task(args.task)
    task, prompt = task_file.task, task_file.prompt(args.template)
    config = LabelSearchConfig(**{f.name: getattr(args, f.name) for f in fields(LabelSearchConfig)})
    data_dir = _data_dir(args, task_file)
    train = _read(data_dir, "train", task_file, args.skip_bad)
    dev = _read(data_dir, "dev", task_file, args.skip_bad) if _has(data_dir, "dev") else []
    with console.status(f"loading {args.model}..."):
        loaded = load_model(args.model, kind=args.model_kind)
    scorer = PromptModel.for_task(
        loaded.model, loaded.tokenizer, task, prompt, kind=loaded.kind, max_length=args.max_length
    )
    rerank = None
    if config.rerank == "finetune":
        steps = args.rerank_steps
        rerank = finetune_reranker(
            scorer,
            task,
            train,
            dev,
            make_config(args.rerank_backend),
            TrainingArguments(max_steps=steps, eval_every=0),
        )
    result = search_label_words(scorer, task, train, dev, config, rerank_with=rerank)
    out = Path(args.out)
    rows = [
        [
            i + 1,
            ", ".join(f"{k}: {v}" for k, v in r.words.items()),
            r.train_accuracy,
            r.dev_accuracy,
            r.finetuned_dev_accuracy,
        ]
        for i, r in enumerate(result.ranked)
    ]
    table = markdown_table(
        ["rank", "label words", "train acc", "dev acc (zero-shot)", "dev acc (tuned)"], rows
    )
    atomic_write_json(out / "labels.json", result.to_dict())
    atomic_write_text(
        out / "labels.md", f"# Label words for {task.name} ({prompt.name}, {config.criterion})\n\n" + table
    )
    yaml_block = verbalizer_yaml(result.best.words, prompt.name)
    atomic_write_text(out / "verbalizer.yaml", yaml_block)
    shown = Table(title=f"{task.name}: best label words ({config.criterion}; {result.seconds:.0f} s)")
    for column in ("rank", "label words", "train acc", "dev acc"):
        shown.add_column(column)
    for row in rows[:10]:
        shown.add_row(str(row[0]), row[1], f"{row[2]:.3f}", "" if row[3] is None else f"{row[3]:.3f}")
    console.print(shown)
    console.print(f"winner as YAML ({out / 'verbalizer.yaml'}):\n{yaml_block}")
    return 0


def cmd_search_templates(args) -> int:
    from prompts.template_search import templates_yaml

    from .io import atomic_write_json, atomic_write_text, markdown_table
    from .pretrained import load_generator, load_model
    from .template_search import TemplateSearchConfig, search_templates

    task_file = load_task(args.task)
    task, prompt = task_file.task, task_file.prompt(args.template)
    config = TemplateSearchConfig(**{f.name: getattr(args, f.name) for f in fields(TemplateSearchConfig)})
    data_dir = _data_dir(args, task_file)
    train = _read(data_dir, "train", task_file, args.skip_bad)
    dev = _read(data_dir, "dev", task_file, args.skip_bad)
    pool = _read_pool(Path(args.pool)) if args.pool else None
    generator = generator_tokenizer = None
    with console.status(f"loading {args.model}..."):
        loaded = load_model(args.model, kind=args.model_kind)
        if args.generator:
            generator, generator_tokenizer = load_generator(args.generator)
    best, seconds = search_templates(
        loaded.model,
        loaded.tokenizer,
        loaded.kind,
        task,
        prompt.label_words,
        train,
        dev,
        config,
        generator=generator,
        generator_tokenizer=generator_tokenizer,
        pool=pool,
        max_length=args.max_length,
    )
    out = Path(args.out)
    rows = [[i + 1, c.text, c.score, c.source] for i, c in enumerate(best)]
    atomic_write_json(
        out / "templates.json",
        {"task": task.name, "seconds": seconds, "templates": [c.__dict__ for c in best]},
    )
    atomic_write_text(
        out / "templates.md",
        f"# Templates for {task.name} (dev {task.metric}, zero-shot)\n\n"
        + markdown_table(["rank", "template", f"dev {task.metric}", "source"], rows),
    )
    atomic_write_text(out / "templates.yaml", templates_yaml(best, prompt.label_words))
    table = Table(title=f"{task.name}: best templates by dev {task.metric} ({seconds:.0f} s)")
    for column in ("rank", "template", "dev"):
        table.add_column(column)
    for row in rows:
        table.add_row(str(row[0]), row[1], f"{row[2]:.4f}")
    console.print(table)
    console.print(f"as a task-file block: {out / 'templates.yaml'}")
    return 0


def _read_pool(path: Path) -> list[str]:
    """A YAML list of template texts (or a mapping with a ``templates`` list)."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ValueError(f"{path}: not YAML ({error})") from error
    if isinstance(data, dict):
        data = data.get("templates")
    if not isinstance(data, list) or not all(isinstance(t, str) for t in data) or not data:
        raise ValueError(f"{path}: expected a list of template strings (or templates: [...])")
    return data


def cmd_events(args) -> int:
    from prompts.event_prompts import load_event_prompts

    from .events import pipeline
    from .events.constraints import Switches
    from .events.data import read_events
    from .events.ontology import load_ontology
    from .events.scoring import RoleScorer
    from .io import atomic_write_json, atomic_write_jsonl, atomic_write_text, markdown_table
    from .pretrained import load_model

    everything = read_events(args.data)
    # derived from the whole file, so --limit does not shrink the roles each event type may take
    ontology = (
        pipeline.ontology_from_events(everything) if args.ontology_from_data else load_ontology(args.ontology)
    )
    sentences = everything[: args.limit]
    prompts = load_event_prompts(args.prompts)
    with console.status(f"loading {args.model}..."):
        loaded = load_model(args.model, kind=args.model_kind)
    scorer = RoleScorer(
        loaded.model,
        loaded.tokenizer,
        loaded.kind,
        ontology,
        prompts,
        max_length=args.max_length,
        after_words=args.after_words,
    )
    scored = pipeline.score(scorer, sentences, typing=bool(ontology.entity_types), progress=True)
    switches = Switches(not args.no_cross_task, not args.no_cross_argument, not args.no_cross_event)
    predicted = pipeline.predict(scored, ontology, switches, args.method)
    gold = pipeline.gold_roles(scored)
    result = pipeline.metrics(gold, predicted)
    n_events = sum(len(s.events) for s in sentences)
    records = [
        {
            "source": sentence.source,
            "event": sentence.events[slot.event].id,
            "event_type": slot.event_type,
            "entity": slot.entity_id,
            "argument": sentence.entities[slot.entity_id].text,
            "gold": g,
            "prediction": p,
            "scores": {r: float(v) for r, v in zip(slot.roles, slot.scores, strict=True)},
        }
        for sentence, slots, golds, preds in zip(sentences, scored.slots, gold, predicted, strict=True)
        for slot, g, p in zip(slots, golds, preds, strict=True)
    ]
    out = Path(args.out)
    summary = {
        "data": args.data,
        "ontology": ontology.name,
        "model": args.model,
        "method": args.method,
        "constraints": switches.__dict__,
        "sentences": len(sentences),
        "events": n_events,
        "scoring_seconds": scored.seconds,
        "seconds_per_event": scored.seconds / max(1, n_events),
        **result,
    }
    lines = [f"# Event argument roles: {args.data} ({ontology.name}, {args.model})\n"]
    if args.ablation:
        rows = pipeline.ablation(scored, ontology)
        summary["ablation"] = rows
        lines.append(
            markdown_table(
                ["setting", "method", "accuracy", "macro F1", "solve s"],
                [[r["setting"], r["method"], r["accuracy"], r["macro_f1"], r["solve_seconds"]] for r in rows],
            )
        )
        table = Table(title="ablation (accuracy = F1 with given spans)")
        for column in ("setting", "method", "accuracy", "macro F1"):
            table.add_column(column)
        for r in rows:
            table.add_row(r["setting"], r["method"], f"{r['accuracy']:.4f}", f"{r['macro_f1']:.4f}")
        console.print(table)
    atomic_write_jsonl(out / "predictions.jsonl", records)
    atomic_write_json(out / "metrics.json", summary)
    atomic_write_text(out / "results.md", "\n".join(lines) + "\n")
    if result:
        console.print(
            f"accuracy {result['accuracy']:.4f}, macro F1 {result['macro_f1']:.4f} "
            f"on {result['arguments']} arguments"
        )
    console.print(f"{scored.seconds / max(1, n_events):.2f} s per event; results in {out}")
    return 0


def _has(data_dir: Path, split: str) -> bool:
    from .data import find_split

    try:
        find_split(data_dir, split)
        return True
    except FileNotFoundError:
        return False


def cmd_report(args) -> int:
    from .report import find_metrics, summarize, write_report

    runs = find_metrics(args.runs)
    if not runs:
        raise FileNotFoundError(f"no metrics.json under {', '.join(args.runs)}")
    rows = summarize(runs)
    written = write_report(rows, args.out or args.runs[0])
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
    from .splits import make_splits

    task_file = load_task(args.task)
    written = make_splits(
        task_file.task, args.data_dir, args.out, k=args.k, seeds=args.seeds, skip_bad=args.skip_bad
    )
    for split in written:
        console.print(
            f"seed {split.seed}: {split.folder} (train, dev{', test' if split.test else ''}, manifest.json)"
        )
    return 0


def cmd_lint(args) -> int:
    from prompts.lint import lint_file

    files = [Path(f) for f in args.files] or list(iter_task_files(template_dirs()))
    tokenizer, kind = (None, "masked")
    if args.model:
        tokenizer, kind = load_tokenizer(args.model, args.model_kind)
    errors = 0
    words_table = Table(title=f"label words with {args.model}") if tokenizer is not None else None
    if words_table is not None:
        for column in ("file", "template", "label", "word", "tokens", "#"):
            words_table.add_column(column)
    for path in files:
        issues, words = lint_file(path, tokenizer, kind)
        if args.data_dir:
            issues += _lint_data(path, Path(args.data_dir))
        for issue in issues:
            color = {"error": "red", "warning": "yellow", "info": "blue"}[issue.severity]
            console.print(f"[{color}]{issue}[/]", soft_wrap=True)
            errors += issue.severity == "error"
        for w in words:
            if words_table is not None:
                words_table.add_row(
                    Path(w.file).name, w.template, w.label, w.word, " ".join(w.tokens), str(len(w.tokens))
                )
    if words_table is not None:
        console.print(words_table)
    console.print(f"{len(files)} file(s), {errors} error(s)")
    return 1 if errors else 0


def _lint_data(path: Path, data_dir: Path) -> list:
    """Whether the data's train split has every field the task declares and only its labels."""
    from prompts.library import parse_task_file
    from prompts.lint import LintIssue

    parsed, _ = parse_task_file(path)
    if parsed is None:
        return []
    try:
        load_split(data_dir, "train", parsed.task)
    except (DataError, FileNotFoundError) as error:
        return [
            LintIssue(
                "error",
                str(path),
                None,
                None,
                f"the data in {data_dir} does not fit this task: {error}",
                f"the task reads fields {list(parsed.task.fields)} and labels {list(parsed.task.labels)}; "
                "rename the data's columns or change task.fields / task.labels",
            )
        ]
    return []


def cmd_render(args) -> int:
    task_file = load_task(args.task)
    prompt = task_file.prompt(args.template)
    examples = _read(_data_dir(args, task_file), args.split, task_file, args.skip_bad, require_label=False)
    encoder = None
    if args.model:
        from prompts.encoding import PromptEncoder
        from prompts.tokenization import TokenizerAdapter

        tokenizer, kind = load_tokenizer(args.model, args.model_kind)
        adapter = TokenizerAdapter(tokenizer, kind)
        words = prompt.verbalizer(task_file.task).tokenize(
            adapter, PromptEncoder(prompt.template, adapter).slot_after_space
        )
        encoder = PromptEncoder(
            prompt.template,
            adapter,
            max_length=args.max_length,
            slot_length=words.max_word_length,
            field_limits=task_file.task.field_limits,
            truncate_side=task_file.task.truncate_side,
        )
    console.print(f"[bold]{task_file.task.name}[/] template [bold]{prompt.name}[/]: {prompt.template.text!r}")
    console.print(f"label words: {prompt.label_words}")
    for example in examples[: args.n]:
        before, after = prompt.template.render_parts(example.fields)
        console.print(f"\n[dim]{example.source}[/]  label: {example.label}")
        console.print(f"{before}[reverse]{{mask}}[/]{after}", markup=True, highlight=False, soft_wrap=True)
        if encoder is not None:
            enc = encoder.encode(example.fields)
            total = enc.length(encoder.slot_length)
            cut = ", ".join(f"{k}: -{v} tokens" for k, v in enc.truncated.items()) or "none"
            console.print(
                f"[dim]{total} tokens (max {encoder.max_length}); slot at token {len(enc.prefix_ids)}; "
                f"truncated: {cut}[/]"
            )
    return 0


def cmd_preview(args) -> int:
    from .model import PromptModel
    from .pretrained import load_model
    from .preview import preview

    task_file = load_task(args.task)
    task, prompt = task_file.task, task_file.prompt(args.template)
    examples = _read(_data_dir(args, task_file), args.split, task_file, args.skip_bad, require_label=False)
    with console.status(f"loading {args.model}..."):
        loaded = load_model(args.model, kind=args.model_kind)
    scorer = PromptModel.for_task(
        loaded.model, loaded.tokenizer, task, prompt, kind=loaded.kind, max_length=args.max_length
    )
    rows = preview(scorer, examples[: args.n])
    words = ", ".join(f"{label}: {'/'.join(w)}" for label, w in prompt.label_words.items())
    table = Table(title=f"{task.name} / {prompt.name}: {prompt.template.text!r}  ({words})", show_lines=True)
    for column in ("example", "prompt as the model reads it", "gold", "prediction", *task.labels):
        table.add_column(column)
    for r in rows:
        cut = ", ".join(f"{k} -{v}" for k, v in r.truncated.items())
        text = f"{r.before}[reverse] {'/'.join(task.labels)} [/]{r.after}\n[dim]{r.tokens} tokens"
        text += f"; truncated: {cut}[/]" if cut else "[/]"
        style = "green" if r.gold == r.prediction else "red" if r.gold is not None else None
        table.add_row(
            r.source,
            text,
            r.gold or "",
            f"[{style}]{r.prediction}[/]" if style else r.prediction,
            *[f"{r.probabilities[label]:.3f}" for label in task.labels],
        )
    console.print(table)
    correct = [r for r in rows if r.gold is not None]
    if correct:
        console.print(f"{sum(r.gold == r.prediction for r in correct)} of {len(correct)} right (zero-shot)")
    return 0


def cmd_new(args) -> int:
    from prompts.scaffold import scaffold_from_labels, scaffold_task_file

    out = Path(args.out or Path("templates") / f"{args.task}.yaml")
    if out.exists():
        raise FileExistsError(f"{out} exists; choose another --out")
    if args.from_labels:
        if args.fields or args.labels:
            raise ValueError(
                "--from-labels takes the labels and the fields (from --template): drop --fields/--labels"
            )
        text = scaffold_from_labels(
            args.task,
            _comma_list(args.from_labels),
            args.template or "{{ text }} It was {{ mask }}.",
            args.metric,
        )
    else:
        if not (args.fields and args.labels):
            raise ValueError("give --fields and --labels, or --from-labels (with --template)")
        if args.template:
            raise ValueError("--template goes with --from-labels")
        text = scaffold_task_file(args.task, _comma_list(args.fields), _comma_list(args.labels), args.metric)
    from .io import atomic_write_text

    atomic_write_text(out, text)
    console.print(f"wrote {out}; next: lmbff templates lint {out} --model <model>")
    if out.parent.resolve() == (Path.cwd() / "templates").resolve():
        console.print(f"--task {args.task} finds it from this folder")
    return 0


def cmd_upgrade_state(args) -> int:
    from .state import upgrade_legacy_state

    path = upgrade_legacy_state(args.state, args.task, args.model)
    console.print(f"re-saved {path}: the state now carries its task, template and label words")
    return 0


def cmd_studio(args) -> int:
    import uvicorn

    from .studio.loading import ModelHolder
    from .studio.server import Studio, create_app
    from .studio.workspace import Workspace

    holder = ModelHolder(args.model, args.model_kind)
    studio = Studio(
        Workspace(args.workspace),
        holder,
        Path(args.data_dir) if args.data_dir else None,
        max_length=args.max_length,
    )
    url = f"http://{args.host}:{args.port}/" + (f"?task={args.task}" if args.task else "")
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        console.print(
            f"[yellow]listening on {args.host}: anyone who reaches it can read and save templates[/]"
        )
    console.print(f"lmbff studio: {url}  (workspace: {studio.workspace.root}; Ctrl-C stops)")
    holder.start()
    hosts = [args.host, "127.0.0.1", "localhost", "[::1]"] if args.host not in ("0.0.0.0", "::") else ["*"]
    # A render or scoring batch in a worker thread is bounded (render budget, one batch); SIGTERM does not
    # wait for more than a second of it.
    uvicorn.run(
        create_app(studio, hosts),
        host=args.host,
        port=args.port,
        log_level="warning",
        timeout_graceful_shutdown=1,
    )
    return 0


def cmd_demo(args) -> int:
    from .demo import run_demo

    run_demo(
        model_name=args.model,
        model_kind=args.model_kind,
        steps=args.steps,
        out_dir=Path(args.out),
        console=console,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
