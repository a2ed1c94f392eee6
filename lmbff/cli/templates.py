"""``templates lint|render|preview|new``: authoring task files."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table
from rich.text import Text

from prompts.library import iter_task_files, load_task, template_dirs

from ..data import DataError, gold_text, load_split
from ..errors import ConfigError
from ..pretrained import load_tokenizer
from .common import (
    _add_model_args,
    _add_task_args,
    _comma_list,
    _data_dir,
    _read,
    console,
    escape,
    positive_int,
)


def add_parsers(sub) -> None:
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
    p.set_defaults(handler=cmd_lint)

    p = templates.add_parser(
        "preview", help="real examples through a template and a model: label probabilities, prediction"
    )
    _add_task_args(p, data_required=False)
    _add_model_args(p)
    p.add_argument("--split", default="train")
    p.add_argument("--n", type=positive_int, default=8)
    p.add_argument("--max-length", type=positive_int, default=128)
    p.set_defaults(handler=cmd_preview)

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
        help="comma-separated labels (as zero-shot --labels); the fields come from --template, the label "
        "words from --label-words or the label names (credit_limit_change -> credit limit change)",
    )
    p.add_argument(
        "--label-words",
        default=None,
        help="with --from-labels: comma-separated label words in label order (default: from the names)",
    )
    p.add_argument(
        "--template",
        default=None,
        help='with --from-labels: the template text (default: "{{ text }} It was {{ mask }}.")',
    )
    p.add_argument("--metric", default="accuracy")
    p.add_argument("--out", default=None, help="default: templates/<task>.yaml (where --task <task> looks)")
    p.set_defaults(handler=cmd_new)

    p = templates.add_parser("render", help="show rendered prompts for real examples")
    _add_task_args(p, data_required=False)
    p.add_argument("--split", default="train")
    p.add_argument("--n", type=positive_int, default=3)
    p.add_argument("--model", default=None, help="also show token counts and truncation for this model")
    p.add_argument("--model-kind", choices=["masked", "causal"], default=None)
    p.add_argument("--max-length", type=positive_int, default=128)
    p.set_defaults(handler=cmd_render)


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
            console.print(f"[{color}]{escape(str(issue))}[/]", markup=True, soft_wrap=True)
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
    console.print(
        f"[bold]{escape(task_file.task.name)}[/] template [bold]{escape(prompt.name)}[/]: "
        f"{escape(repr(prompt.template.text))}",
        markup=True,
    )
    console.print(f"label words: {prompt.label_words}")
    for example in examples[: args.n]:
        before, after = prompt.template.render_parts(example.fields)
        label = escape(str(gold_text(example.label)))
        console.print(f"\n[dim]{escape(example.source)}[/]  label: {label}", markup=True)
        console.print(
            f"{escape(before)}[reverse]{{mask}}[/]{escape(after)}",
            markup=True,
            highlight=False,
            soft_wrap=True,
        )
        if encoder is not None:
            enc = encoder.encode(example.fields)
            total = enc.length(encoder.slot_length)
            cut = ", ".join(f"{k}: -{v} tokens" for k, v in enc.truncated.items()) or "none"
            console.print(
                f"[dim]{total} tokens (max {encoder.max_length}); slot at token {len(enc.prefix_ids)}; "
                f"truncated: {escape(cut)}[/]",
                markup=True,
            )
    return 0


def cmd_preview(args) -> int:
    from ..model import PromptModel
    from ..pretrained import load_model
    from ..preview import preview

    task_file = load_task(args.task)
    task, prompt = task_file.task, task_file.prompt(args.template)
    examples = _read(_data_dir(args, task_file), args.split, task_file, args.skip_bad, require_label=False)
    with console.status(f"loading {args.model}..."):
        loaded = load_model(args.model, kind=args.model_kind, precision=args.precision)
    scorer = PromptModel.for_task(
        loaded.model, loaded.tokenizer, task, prompt, kind=loaded.kind, max_length=args.max_length
    )
    rows = preview(scorer, examples[: args.n])
    words = ", ".join(f"{label}: {'/'.join(w)}" for label, w in prompt.label_words.items())
    if prompt.verbalizer_kind != "words":
        console.print(
            f"verbalizer: {prompt.verbalizer_kind}; its prototypes are learned in training, so this preview "
            "scores the label words (zero-shot); `lmbff predict --state` scores a trained state"
        )
    table = Table(title=f"{task.name} / {prompt.name}: {prompt.template.text!r}  ({words})", show_lines=True)
    for column in ("example", "prompt as the model reads it", "gold", "prediction", *task.labels):
        table.add_column(column)
    for r in rows:
        cut = ", ".join(f"{k} -{v}" for k, v in r.truncated.items())
        markup = f"{escape(r.before)}[reverse] {escape('/'.join(task.labels))} [/]{escape(r.after)}\n"
        markup += f"[dim]{r.tokens} tokens" + (f"; truncated: {escape(cut)}[/]" if cut else "[/]")
        text = Text.from_markup(markup)
        style = "green" if r.gold == r.prediction else "red" if r.gold is not None else None
        table.add_row(
            r.source,
            text,
            r.gold or "",
            Text(str(r.prediction), style=style or ""),
            *[f"{r.probabilities[label]:.3f}" for label in task.labels],
        )
    console.print(table)
    correct = [r for r in rows if r.gold is not None]
    if correct:
        console.print(f"{sum(r.gold == r.prediction for r in correct)} of {len(correct)} right (zero-shot)")
    return 0


def cmd_new(args) -> int:
    from prompts.library import parse_task_text
    from prompts.scaffold import scaffold_from_labels, scaffold_task_file

    out = Path(args.out or Path("templates") / f"{args.task}.yaml")
    if out.exists():
        raise FileExistsError(f"{out} exists; choose another --out")
    if args.from_labels:
        if args.fields or args.labels:
            raise ConfigError(
                "--from-labels takes the labels and the fields (from --template): drop --fields/--labels"
            )
        labels = _comma_list(args.from_labels)
        words = _comma_list(args.label_words) if args.label_words else None
        text = scaffold_from_labels(
            args.task, labels, args.template or "{{ text }} It was {{ mask }}.", args.metric, words
        )
        parsed, errors = parse_task_text(text, str(out))
        if errors:
            raise errors[0]
        chosen = parsed.prompt().label_words
        how = "as given" if words else "from the label names"
        console.print(f"label words ({how}): " + ", ".join(f"{k}: {v[0]}" for k, v in chosen.items()))
    else:
        if not (args.fields and args.labels):
            raise ConfigError("give --fields and --labels, or --from-labels (with --template)")
        if args.template or args.label_words:
            raise ConfigError("--template and --label-words go with --from-labels")
        text = scaffold_task_file(args.task, _comma_list(args.fields), _comma_list(args.labels), args.metric)
    from ..files import atomic_write_text

    atomic_write_text(out, text)
    console.print(f"wrote {out}; next: lmbff templates lint {out} --model <model>")
    if out.parent.resolve() == (Path.cwd() / "templates").resolve():
        console.print(f"--task {args.task} finds it from this folder")
    return 0
