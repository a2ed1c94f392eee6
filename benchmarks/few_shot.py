"""Few-shot benchmark (LM-BFF's protocol): zero-shot, plain fine-tuning, prompt-based fine-tuning and
prompt-based fine-tuning with demonstrations, K=16, LM-BFF's official splits, several seeds, one report.

    python benchmarks/few_shot.py --data-root ../shared/data --tasks SST-2,TREC \
        --out benchmarks/results/few_shot

Each (task, method, seed) is an independent run folder (resumable: finished runs are kept); the report
(report.md, report.json, report.png) gives mean (std) over seeds, seconds per seed and peak memory.
The default budget is sized for 2 CPU cores and the embedded 270M model: see --help.

``--tasks`` takes names, ``all`` (LM-BFF's 15) or ``single`` (the single-sentence ones); with
``--test-sample N`` test sets over N examples are scored on a fixed, seeded sample of N
(benchmarks/lmbff_tasks.py), the same for every method. ``--test-split dev`` scores the dev split
instead of test (learning-rate sweeps: test is never read).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from lmbff.report import find_metrics, summarize, write_report

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lmbff_tasks import (
    BY_NAME,
    add_test_sample_argument,
    backend_arguments,
    data_dir,
    resolve_backend,
    select,
)

from lmbff.cli.common import positive_float, positive_int

DEFAULT_METHODS = "zero-shot,finetune,prompt,prompt-demos"


def template_arguments(template: str | None) -> list[str]:
    """`lmbff run`'s flags for a --templates value: one template, or ``a+b`` for LM-BFF's template
    ensemble (one model per template, probabilities averaged; its dev score averages the members')."""
    if not template:
        return []
    if "+" in template:
        return ["--template-ensemble", ",".join(template.split("+"))]
    return ["--template", template]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    parser.add_argument("--tasks", default="SST-2,TREC", help="names, all, single or pairs")
    parser.add_argument("--methods", default=DEFAULT_METHODS)
    parser.add_argument("--seeds", default="13,21,42,87,100")
    parser.add_argument("--model", default="gemma-3-270m")
    parser.add_argument(
        "--max-steps", type=positive_int, default=32, help="LM-BFF: 1000; 32 fits 2 CPU cores"
    )
    parser.add_argument("--eval-every", type=positive_int, default=16)
    parser.add_argument("--batch-size", type=positive_int, default=8)
    parser.add_argument(
        "--backends",
        default="full",
        help="tuning backends for the prompt methods, e.g. full,ln,prefix+ln; full-lean: full with the "
        "vocabulary matrices frozen (--full-embeddings frozen)",
    )
    parser.add_argument(
        "--learning-rate",
        type=positive_float,
        default=None,
        help="default: LM-BFF's 1e-5 for full tuning and the baselines, each other backend's own",
    )
    parser.add_argument(
        "--demo-inference-sets",
        type=positive_int,
        default=1,
        help="LM-BFF: 16 (MNLI, SNLI, QQP: 4); 1 here: one set of SST-2's 872 test prompts with two "
        "demonstrations takes ~6 minutes on 2 cores",
    )
    parser.add_argument("--max-length", type=positive_int, default=256, help="query + two demonstrations")
    parser.add_argument(
        "--templates",
        default=None,
        help="TASK=TEMPLATE,... over the defaults (each task's causal-LM template from "
        "lmbff_tasks.py: TREC's slot-last one, as LM-BFF's slot-first one costs a causal LM a pass "
        "over the whole question per label; the pair tasks' slot-last variants are question_answer); "
        "TASK=a+b: LM-BFF's template ensemble of a and b",
    )
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "auto"])
    parser.add_argument(
        "--verbalizer", default=None, choices=["words", "prototype", "words+prototype"],
        help="how the prompt methods score classes (default: the template's own)",
    )  # fmt: skip
    add_test_sample_argument(parser)
    parser.add_argument("--test-split", default="test", help="dev: score the dev split (sweeps)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/few_shot"))
    args = parser.parse_args(argv)
    if not args.data_root.is_dir():
        print(f"no benchmark data at {args.data_root}; pass --data-root", file=sys.stderr)
        return 2
    # --templates overrides the defaults task by task: naming MNLI's template keeps TREC's slot-last one.
    templates = {t.name: t.causal_template for t in BY_NAME.values() if t.causal_template}
    for pair in (args.templates or "").split(","):
        if not pair:
            continue
        task, sep, template = pair.partition("=")
        if not sep or task not in BY_NAME or not template:
            print(f"--templates: expected TASK=TEMPLATE with a known task, got {pair!r}", file=sys.stderr)
            return 2
        templates[task] = template
    derived = args.out / "derived"  # sampled test sets (not committed)
    for task in [t.name for t in select(args.tasks)]:
        source = args.data_root / task
        if args.test_sample:
            source = data_dir(BY_NAME[task], args.data_root, derived, args.test_sample)
        runs = [
            (method, backend)
            for method in args.methods.split(",")
            for backend in (args.backends.split(",") if method.startswith("prompt") else ["full"])
        ]
        for method, backend in runs:
            full = resolve_backend(backend)[0] == "full"  # full-lean too: LM-BFF's rate
            rate = args.learning_rate if args.learning_rate is not None else 1e-5 if full else None
            for seed in args.seeds.split(","):
                # One process per run: peak memory is then the run's own, not the high-water mark left
                # by the run before it in the same process.
                command = [
                    sys.executable,
                    "-m",
                    "lmbff.cli",
                    "run",
                    "--task",
                    task,
                    "--data-dir",
                    str(source),
                    "--model",
                    args.model,
                    "--seeds",
                    seed,
                    "--methods",
                    method,
                    "--out",
                    str(args.out / task),
                    "--max-steps",
                    str(args.max_steps),
                    "--eval-every",
                    str(args.eval_every),
                    "--batch-size",
                    str(args.batch_size),
                    *backend_arguments(backend),
                    *(["--learning-rate", str(rate)] if rate is not None else []),
                    "--demo-inference-sets",
                    str(args.demo_inference_sets),
                    "--max-length",
                    str(args.max_length),
                    *template_arguments(templates.get(task)),
                    "--precision",
                    args.precision,
                    "--test-split",
                    args.test_split,
                    *(
                        ["--verbalizer", args.verbalizer]
                        if args.verbalizer and method.startswith("prompt")
                        else []
                    ),
                ]
                code = subprocess.run(command).returncode
                if code:
                    return code
    rows = summarize(find_metrics([args.out]))
    for path in write_report(rows, args.out):
        print(path)
    print((args.out / "report.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
