"""``events``: zero-shot event argument roles with prompts and global constraints."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from .common import _add_model_args, console, non_negative_int, positive_int


def add_parsers(sub) -> None:
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
    p.add_argument("--limit", type=positive_int, default=None, help="only the first N sentences")
    p.add_argument("--max-length", type=positive_int, default=256)
    p.add_argument(
        "--after-words",
        type=non_negative_int,
        default=None,
        help="keep N words after the argument (default: all, GCP)",
    )
    p.add_argument("--out", required=True)
    p.set_defaults(handler=cmd_events)


def cmd_events(args) -> int:
    from prompts.event_prompts import load_event_prompts

    from ..events import pipeline
    from ..events.constraints import Switches
    from ..events.data import read_events
    from ..events.ontology import load_ontology
    from ..events.scoring import RoleScorer
    from ..files import markdown_table
    from ..pretrained import load_model
    from ..results import RunResult

    everything = read_events(args.data)
    # derived from the whole file, so --limit does not shrink the roles each event type may take
    ontology = (
        pipeline.ontology_from_events(everything) if args.ontology_from_data else load_ontology(args.ontology)
    )
    sentences = everything[: args.limit]
    prompts = load_event_prompts(args.prompts)
    with console.status(f"loading {args.model}..."):
        loaded = load_model(args.model, kind=args.model_kind, precision=args.precision)
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
    records = pipeline.prediction_records(sentences, scored, gold, predicted)
    out = Path(args.out)
    summary = pipeline.summary(
        sentences, scored, ontology, result, data=args.data, model=args.model, method=args.method,
        constraints=switches.__dict__,
    )  # fmt: skip
    n_events = summary["events"]
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
    run = RunResult(
        task=f"events ({ontology.name})",
        method=f"zero-shot ({args.method})",
        backend="none",
        model=args.model,
        template=str(args.prompts or "templates/events.yaml"),
        seed=None,
        metric="accuracy",
        test={k: v for k, v in result.items() if isinstance(v, float)},
        # (the benchmark reads accuracy, macro F1 and the ablation at the top level; the common keys win)
        details={k: v for k, v in summary.items() if k not in ("model", "method")} | {"solver": args.method},
    )
    from ..distributed import is_main_process

    if not is_main_process():  # under a launcher every process has every score; the main one writes
        return 0
    run.write(out, markdown="\n".join(lines) + "\n", records=records)
    if result:
        console.print(
            f"accuracy {result['accuracy']:.4f}, macro F1 {result['macro_f1']:.4f} "
            f"on {result['arguments']} arguments"
        )
    console.print(f"{scored.seconds / max(1, n_events):.2f} s per event; results in {out}")
    return 0
