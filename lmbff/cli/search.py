"""``search-labels`` and ``search-templates``: automatic label words and templates."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from rich.table import Table

from prompts.library import load_task

from ..errors import ConfigError
from .common import (
    _add_dataclass_args,
    _add_model_args,
    _add_task_args,
    _data_dir,
    _has_split,
    _read,
    console,
    positive_int,
)
from .training import _add_backend_options, _backend_options


def add_parsers(sub) -> None:
    p = sub.add_parser(
        "search-labels", help="automatic label words (LM-BFF): rank words at the slot, then assignments"
    )
    _add_task_args(p)
    _add_model_args(p)
    from ..config import LabelSearchConfig

    _add_dataclass_args(p, LabelSearchConfig)
    p.add_argument("--max-length", type=positive_int, default=128)
    p.add_argument(
        "--rerank-steps", type=positive_int, default=100, help="tuning steps per re-ranked assignment"
    )
    p.add_argument(
        "--rerank-backend",
        default="full",
        help="tuning backend for re-ranking (full is lean unless --full-embeddings train)",
    )
    # The same --<backend>-<option> flags as train: a re-ranking run tunes like a training run.
    _add_backend_options(p)
    p.add_argument("--out", required=True, help="labels.json, labels.md and verbalizer.yaml go here")
    p.set_defaults(handler=cmd_search_labels)

    p = sub.add_parser(
        "search-templates", help="automatic templates: T5 span filling (LM-BFF) or a pool, ranked on dev"
    )
    _add_task_args(p)
    _add_model_args(p)
    from ..config import TemplateSearchConfig

    _add_dataclass_args(p, TemplateSearchConfig)
    p.add_argument("--generator", default=None, help="a T5-style model folder or name (default: pool mode)")
    p.add_argument(
        "--pool", default=None, help="YAML list of candidate templates (default: the built-in pool)"
    )
    p.add_argument("--max-length", type=positive_int, default=128)
    p.add_argument("--out", required=True, help="templates.json, templates.md and templates.yaml go here")
    p.set_defaults(handler=cmd_search_templates)


def cmd_search_labels(args) -> int:
    from ..config import TrainingArguments
    from ..files import atomic_write_json, atomic_write_text, markdown_table
    from ..model import PromptModel
    from ..pretrained import load_model
    from ..search.label_ranking import verbalizer_yaml
    from ..search.labels import LabelSearchConfig, finetune_reranker, search_label_words
    from ..tuning import make_config

    task_file = load_task(args.task)
    task, prompt = task_file.task, task_file.prompt(args.template)
    config = LabelSearchConfig(**{f.name: getattr(args, f.name) for f in fields(LabelSearchConfig)})
    options = _backend_options(args)
    if options and config.rerank != "finetune":
        raise ConfigError(
            f"{', '.join(sorted(options))} backend options apply to re-ranking only: add --rerank finetune"
        )
    # Built before the model loads, so that an unknown backend or option fails at once.
    rerank_tuning = make_config(args.rerank_backend, options)
    data_dir = _data_dir(args, task_file)
    train = _read(data_dir, "train", task_file, args.skip_bad)
    dev = _read(data_dir, "dev", task_file, args.skip_bad) if _has_split(data_dir, "dev") else []
    # search_label_words refuses this too, but only after the model has loaded.
    if config.rerank == "finetune" and not dev:
        raise ConfigError(f"--rerank finetune ranks by dev accuracy, and {data_dir} has no dev examples")
    with console.status(f"loading {args.model}..."):
        loaded = load_model(args.model, kind=args.model_kind, precision=args.precision)
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
            rerank_tuning,
            TrainingArguments(max_steps=steps, eval_every=0),
        )
    result = search_label_words(scorer, task, train, dev, config, rerank_with=rerank)
    record = result.to_dict()
    if rerank is not None:
        record["rerank_tuning"] = {"steps": args.rerank_steps, **rerank_tuning.to_dict()}
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
    atomic_write_json(out / "labels.json", record)
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
    from ..files import atomic_write_json, atomic_write_text, markdown_table
    from ..pretrained import load_generator, load_model
    from ..search.template_candidates import templates_yaml
    from ..search.templates import TemplateSearchConfig, search_templates

    task_file = load_task(args.task)
    task, prompt = task_file.task, task_file.prompt(args.template)
    config = TemplateSearchConfig(**{f.name: getattr(args, f.name) for f in fields(TemplateSearchConfig)})
    data_dir = _data_dir(args, task_file)
    train = _read(data_dir, "train", task_file, args.skip_bad)
    dev = _read(data_dir, "dev", task_file, args.skip_bad)
    pool = _read_pool(Path(args.pool)) if args.pool else None
    generator = generator_tokenizer = None
    with console.status(f"loading {args.model}..."):
        loaded = load_model(args.model, kind=args.model_kind, precision=args.precision)
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
    from prompts.library import strict_yaml

    # the task files' reader: YAML 1.2's core schema, a key written twice refused at its line
    _, data = strict_yaml(path.read_text(encoding="utf-8"), str(path))
    if isinstance(data, dict):
        data = data.get("templates")
    if not isinstance(data, list) or not all(isinstance(t, str) for t in data) or not data:
        raise ConfigError(f"{path}: expected a list of template strings (or templates: [...])")
    return data
