"""``train`` (one run) and ``run`` (LM-BFF's protocol over seeds and methods), with the options
generated from the torch-free configs and the plan printed before anything loads."""

from __future__ import annotations

import argparse
import os
from dataclasses import fields
from pathlib import Path

from rich.table import Table

from prompts.library import load_task

from ..config import METHODS, PROMPT_METHODS
from ..errors import ConfigError
from ..pretrained import DEFAULT_MODEL
from .common import (
    _add_column_args,
    _add_dataclass_args,
    _add_mode_arg,
    _add_model_args,
    _add_task_args,
    _columns,
    _comma_list,
    _has_split,
    _seeds,
    _text_columns,
    console,
    escape,
    positive_int,
)


def add_parsers(sub) -> None:
    p = sub.add_parser("train", help="tune on a k-shot split's train, select on dev, score test")
    _add_inputs(p, "the training rows, one file (.csv, .tsv, .jsonl), instead of --data-dir", dev=True)
    p.add_argument("--method", choices=METHODS, default="prompt")
    p.add_argument("--demonstrations", action="store_true", help="same as --method prompt-demos (LM-BFF)")
    p.add_argument("--out", required=True, help="output folder (metrics, results, state, config)")
    group = p.add_argument_group(
        "adding classes",
        "--from-state and --new-labels: the state's task grown by new classes (lmbff.incremental)",
    )
    group.add_argument(
        "--from-state",
        default=None,
        metavar="STATE",
        help="a trained state (a run's state/) to add the --new-labels classes to: its backbone and old "
        "prototypes stay frozen; the training rows are the new classes'",
    )
    group.add_argument(
        "--new-labels", type=_comma_list, default=None, help="with --from-state: the new classes"
    )
    group.add_argument(
        "--new-label-words",
        type=_comma_list,
        default=None,
        help="with --new-labels: one word per new label, in order (default: the label names as words)",
    )
    from ..config import IncrementalConfig

    _add_dataclass_args(group, IncrementalConfig, "new-")
    p.set_defaults(handler=cmd_train)

    p = sub.add_parser(
        "run", help="LM-BFF's protocol: splits per seed, one run per seed and method, a report"
    )
    _add_inputs(p, "one file of labelled rows to draw the k-shot splits from, instead of --data-dir's train")
    p.add_argument("--k", type=positive_int, default=16)
    p.add_argument("--seeds", type=_seeds, default=[13, 21, 42, 87, 100])
    p.add_argument("--methods", default="prompt", help=f"comma-separated: {','.join(METHODS)}")
    p.add_argument("--out", required=True, help="output folder: <method>/seed-<seed>/ per run, report.md")
    p.set_defaults(handler=cmd_run)


def _add_inputs(p: argparse.ArgumentParser, data_file_help: str, dev: bool = False) -> None:
    """The task (a file, or --labels), the data (a folder, or files with their own columns), the model
    and the recipe: what train and run share."""
    _add_task_args(p, data_required=False, task_required=False)
    _add_labels_args(p)
    p.add_argument("--data-file", default=None, help=data_file_help)
    if dev:
        p.add_argument(
            "--dev-file",
            default=None,
            help="with --data-file: rows to choose the checkpoint on (without: the last step is kept)",
        )
    p.add_argument("--test-file", default=None, help="with --data-file: the rows scored at the end")
    _add_column_args(p)
    _add_model_args(p)
    _add_experiment_args(p)


def _add_labels_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--labels",
        type=_comma_list,
        default=None,
        help="a task without a YAML file: its labels (then --template is the template's text, default "
        '"{{ text }} It was {{ mask }}."; the task is written to <out>/task.yaml)',
    )
    p.add_argument(
        "--label-words",
        type=_comma_list,
        default=None,
        help="with --labels: one word per label, in order (default: the label names as words)",
    )
    p.add_argument(
        "--multi-label",
        action="store_true",
        help="with --labels: several labels per example (a TSV or CSV label field split on "
        "--label-delimiter, a JSON lines list), each decided by its own threshold chosen on dev",
    )
    p.add_argument(
        "--label-delimiter",
        default=",",
        help="with --multi-label: the text between the labels of a TSV or CSV row (default ',')",
    )


def _task_from_labels(args, out: Path) -> None:
    """--labels instead of --task: the task file made from --labels, --label-words and --template is
    written to ``<out>/task.yaml`` and --task names it (a run records its task file's path)."""
    from prompts.scaffold import scaffold_from_labels

    from ..files import atomic_write_text

    if not args.labels:
        if args.label_words:
            raise ConfigError("--label-words goes with --labels; a task file has its own label words")
        if args.multi_label:
            raise ConfigError("--multi-label goes with --labels; a task file says multi_label: true itself")
        if not args.task:
            raise ConfigError(
                "give --task (a task file), or --labels (and --template) for a task without one"
            )
        return
    if args.task:
        raise ConfigError("give --task (a task file) or --labels (no task file), not both")
    text = scaffold_from_labels(
        "few-shot",
        args.labels,
        args.template or "{{ text }} It was {{ mask }}.",
        "accuracy",
        args.label_words,
        multi_label=args.multi_label,
        label_delimiter=args.label_delimiter,
    )
    path = out / "task.yaml"
    if (out / "config.json").exists() and path.exists() and path.read_text(encoding="utf-8") != text:
        raise FileExistsError(f"{out} holds a run of another task ({path}); choose another --out")
    atomic_write_text(path, text)
    args.task, args.template = str(path), None


def _add_experiment_args(p: argparse.ArgumentParser) -> None:
    """Options generated from the TrainingArguments and DemonstrationConfig dataclasses."""
    from ..config import VERBALIZERS, DemonstrationConfig, PrototypeConfig, TrainingArguments
    from ..defaults import DEFAULT_PRESET, PRESETS
    from ..tuning import backend_names

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
    _add_mode_arg(p)
    p.add_argument("--max-length", type=positive_int, default=128, help="token budget per prompt")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    p.add_argument("--test-split", default="test")
    p.add_argument(
        "--template-ensemble",
        default=None,
        help="names (a,b,c) or topN (auto_1..auto_N from search-templates): one model per template, averaged",
    )
    _add_dataclass_args(
        p, TrainingArguments, from_preset=("max_steps", "eval_every", "learning_rate", "min_epochs")
    )
    _add_dataclass_args(p, DemonstrationConfig, "demo-")
    p.add_argument(
        "--verbalizer",
        choices=VERBALIZERS,
        default=None,
        help="how the tuned prompt scores classes: its label words, a learned prototype per class (one "
        "forward pass per example whatever the number of classes), or both (default: the template's "
        "own, else words)",
    )
    _add_dataclass_args(p, PrototypeConfig, "prototype-")
    p.add_argument(
        "--out-of-scope-label",
        default=None,
        metavar="LABEL",
        help="a label meaning 'none of these classes' (e.g. oos): its rows are not trained on; dev rows with "
        "it choose the confidence below which the run abstains; test reports in-scope accuracy and "
        "out-of-scope recall and precision",
    )


def backend_option_flag(backend: str, option: str) -> str:
    """The command-line flag of a backend's config option: ("prefix", "mlp_hidden") -> --prefix-mlp-hidden."""
    return f"--{backend}-{option.replace('_', '-')}"


def _add_backend_options(p: argparse.ArgumentParser) -> None:
    """--<backend>-<option> for every option of every registered backend (e.g. --prefix-length); each
    defaults to None, so only what is given reaches the backend's config."""
    from ..options import add_options
    from ..tuning import backend_names, get_config_class

    group = p.add_argument_group("backend options (apply to the backends named in --backend)")
    for backend in backend_names():
        add_options(
            group,
            get_config_class(backend),
            flag_prefix=f"{backend}-",
            dest_prefix=f"backend__{backend}__",
            skip=("learning_rate",),  # --learning-rate sets it for every part
            unset=True,
        )


def _backend_options(args) -> dict[str, dict]:
    options: dict[str, dict] = {}
    for dest, value in vars(args).items():
        if dest.startswith("backend__") and value is not None:
            _, backend, name = dest.split("__", 2)
            options.setdefault(backend, {})[name] = value
    return options


def _experiment_config(args, method: str, data_dir: str, out: str, seed: int | None = None):
    from ..config import DemonstrationConfig, PrototypeConfig, TrainingArguments
    from ..defaults import preset_backend_options, preset_min_epochs, resolve
    from ..ensemble import resolve_ensemble
    from ..experiment import ExperimentConfig

    # the verbalizer the prompt methods score with: the flag's, else the template's own
    verbalizer = None
    if method in PROMPT_METHODS:
        verbalizer = args.verbalizer or load_task(args.task).prompt(args.template).verbalizer_kind
    backend, learning_rate, max_steps, eval_every = resolve(
        args.preset, args.backend, args.learning_rate, args.max_steps, args.eval_every, verbalizer
    )
    values = {f.name: getattr(args, f.name) for f in fields(TrainingArguments)}
    values.update(
        max_steps=max_steps,
        eval_every=eval_every,
        min_epochs=preset_min_epochs(args.preset, args.max_steps, args.min_epochs, verbalizer),
    )
    if method in PROMPT_METHODS:
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
        columns=_columns(args, load_task(args.task).task.fields),
        test_split=args.test_split,
        out=str(out),
        method=method,
        model=args.model,
        model_kind=args.model_kind,
        template=args.template,
        # the baselines have nothing to choose: zero-shot trains nothing, finetune trains everything
        backend=backend,
        backend_options=(
            preset_backend_options(args.preset, backend, _backend_options(args))
            if method in PROMPT_METHODS
            else {}
        ),
        max_length=args.max_length,
        # the finetune baseline scores with a classification head, not through a prompt
        mode=args.mode if method != "finetune" else None,
        training=training,
        demonstrations=demos,
        skip_bad=args.skip_bad,
        precision=args.precision,
        # prototypes are learned: the baselines (zero-shot, finetune) of a `run` keep their own scoring
        verbalizer=args.verbalizer if method in PROMPT_METHODS else None,
        out_of_scope=args.out_of_scope_label,
        prototypes=PrototypeConfig(
            **{f.name: getattr(args, "prototype_" + f.name) for f in fields(PrototypeConfig)}
        ),
        template_ensemble=(
            resolve_ensemble(args.template_ensemble, load_task(args.task)) if args.template_ensemble else []
        ),
    )


def _print_plan(configs: list, preset: str) -> None:
    """What will run and how long it should take, before anything loads (main process only)."""
    from ..defaults import plan_text

    if os.environ.get("RANK", "0") == "0":
        console.print(plan_text(configs, preset), soft_wrap=True)


def _one_data_source(args, files: tuple[str, ...]) -> None:
    """--data-dir or --data-file, not both; the other file options only with --data-file."""
    if bool(args.data_dir) == bool(args.data_file):
        raise ConfigError("give --data-dir (a folder of splits) or --data-file (one file), one of them")
    given = [f"--{name.replace('_', '-')}" for name in files if getattr(args, name)]
    if given and not args.data_file:
        raise ConfigError(f"{', '.join(given)} go(es) with --data-file")
    if args.data_file and not args.test_file:
        raise ConfigError("with --data-file, give --test-file: the rows the run is scored on")


def cmd_train(args) -> int:
    from ..runs import run

    _one_data_source(args, ("dev_file", "test_file"))
    if args.from_state or args.new_labels or args.new_label_words:
        return _add_classes(args)
    _task_from_labels(args, Path(args.out))
    method = "prompt-demos" if args.demonstrations else args.method
    data_dir = args.data_dir or str(Path(args.data_file).parent)
    if args.data_file and not args.dev_file:
        console.print("no --dev-file: nothing to choose a checkpoint on, so the last step is kept")
    config = _experiment_config(args, method, data_dir, args.out)
    if args.data_file:  # the splits are files, read as given
        config.train_split, config.dev_split, config.test_split = (
            args.data_file,
            args.dev_file,
            args.test_file,
        )
    _print_plan([config], args.preset)
    if args.resume:
        from ..experiment import resume_note

        note = resume_note(args.out)
        if note:
            console.print(f"[yellow]{escape(note)}[/]", markup=True)
    metrics = run(config, resume=args.resume)
    if os.environ.get("RANK", "0") != "0":
        return 0  # data-parallel workers: the main process reports
    _print_metrics([metrics])
    console.print(f"results in {args.out}/metrics.json, results.md, predictions.jsonl and state/")
    return 0


def _add_classes(args) -> int:
    """``train --from-state S --new-labels a,b``: the state's task grown by new classes."""
    from dataclasses import fields

    from ..config import IncrementalConfig
    from ..incremental import run_new_classes

    if not (args.from_state and args.new_labels):
        raise ConfigError("adding classes takes --from-state (the trained state) and --new-labels")
    if args.labels:
        raise ConfigError(
            "--from-state adds classes to the state's own task: give --new-labels, not --labels"
        )
    config = IncrementalConfig(**{f.name: getattr(args, "new_" + f.name) for f in fields(IncrementalConfig)})
    splits = (
        (args.data_file, args.dev_file, args.test_file)
        if args.data_file
        else ("train", "dev", args.test_split)
    )
    if not args.data_file and not _has_split(args.data_dir, "dev"):
        splits = (splits[0], None, splits[2])
    data_dir = args.data_dir or str(Path(args.data_file).parent)
    metrics = run_new_classes(
        args.from_state, args.new_labels, args.out, data_dir=data_dir, train_split=splits[0],
        dev_split=splits[1], test_split=splits[2], text_columns=_text_columns(args),
        label_column=args.label_column, label_words=args.new_label_words,
        model=args.model if args.model != DEFAULT_MODEL else None, config=config, task_file=args.task,
    )  # fmt: skip
    console.print(
        f"{metrics['task']}: {', '.join(metrics['new_labels'])} added; test {metrics['metric']} "
        f"{metrics['test'][metrics['metric']]:.4f} (old classes' rows {metrics['old_classes_accuracy']}, "
        f"new classes' rows {metrics['new_classes_accuracy']}); results in {args.out}"
    )
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
            f"{m['dev'][m['metric']]:.4f}" if m.get("dev") else "",
            str(m.get("best_step", "")),
            f"{m['seconds']:.0f}",
        )
    console.print(table)


def cmd_run(args) -> int:
    from ..experiment import experiment_folder
    from ..report import find_metrics, summarize, write_report
    from ..runs import run
    from ..splits import make_splits, split_folder

    _one_data_source(args, ("test_file",))
    _task_from_labels(args, Path(args.out))
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    task_file = load_task(args.task)
    data_dir, out = Path(args.data_dir or Path(args.data_file).parent), Path(args.out)
    runs = []
    _print_plan(
        [_experiment_config(args, m, str(data_dir), "", s) for s in args.seeds for m in methods], args.preset
    )
    for seed in args.seeds:
        try:  # LM-BFF's own k-shot/<k>-<seed>/ folders, or folders made by `lmbff split`
            if args.data_file:
                raise FileNotFoundError  # splits are drawn from the file
            folder = split_folder(data_dir, args.k, seed)
        except FileNotFoundError:
            folder = out / "splits" / f"{args.k}-{seed}"
            if not (folder / "manifest.json").exists():
                make_splits(
                    task_file.task,
                    None if args.data_file else data_dir,
                    out / "splits",
                    k=args.k,
                    seeds=[seed],
                    skip_bad=args.skip_bad,
                    train_file=args.data_file,
                    test_file=args.test_file,
                    columns=_columns(args, task_file.task.fields),
                )
        for method in methods:
            console.print(
                f"[bold]{escape(task_file.task.name)}[/] seed {seed}, {method} (split {escape(str(folder))})",
                markup=True,
            )
            config = _experiment_config(args, method, str(folder), "", seed)
            config.out = str(
                experiment_folder(
                    out,
                    method,
                    seed,
                    config.backend,
                    config.backend_options,
                    config.precision,
                    verbalizer=config.verbalizer,
                    mode=config.mode,
                )
            )
            runs.append(run(config, resume=True))
    _print_metrics(runs)
    # Every finished run under --out, not only this invocation's: seeds run as separate processes
    # into one folder end with one report.
    written = write_report(summarize(find_metrics([out])), out)
    console.print("report: " + ", ".join(map(str, written)))
    return 0
