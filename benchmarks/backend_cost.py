"""What each tuning backend costs on the embedded model, relative to full fine-tuning in the same run.

    python benchmarks/backend_cost.py --backends full,ln,prompt,prefix,lora,adapter,prefix+ln,unipelt

Each backend runs in its own process (so peak memory is its own): the model is loaded, the backend
applied, ``--steps`` optimizer steps are taken on the same SST-2 batch (batch 8, LM-BFF's template;
seconds per step is their median, which the first step's warm-up does not move), and the exported
state is measured. Prints and writes a table with trainable parameters (% of the model), saved-state
size, seconds per step and peak memory, each with its ratio to ``full`` (results/backend_cost/cost.md,
cost.json).

The table also gets each task's test accuracy per backend from the few-shot benchmark's finished runs
(``benchmarks/few_shot.py --methods prompt --backends ...``, found under ``--accuracy-from``), with
the difference to ``full`` in points. ``--table-only`` rebuilds the table from cost.json without
measuring again (cost runs want the cores to themselves; accuracy runs take hours).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

OUT = Path("benchmarks/results/backend_cost")
COST_COLUMNS = [
    "backend",
    "trainable (% of model)",
    "state MB (x full)",
    "s / step (x full)",
    "peak MB (x full)",
]


def measure(backend: str, model: str, steps: int, data_dir: Path) -> dict:
    from safetensors.torch import save

    from lmbff.data import load_split
    from lmbff.memory import PeakMemory
    from lmbff.model import PromptModel
    from lmbff.pretrained import load_model
    from lmbff.train import Trainer, TrainingArguments
    from lmbff.tuning import make_config
    from prompts.library import load_task

    memory = PeakMemory()
    task_file = load_task("SST-2")
    train = load_split(data_dir, "train", task_file.task).examples[:8]
    loaded = load_model(model)
    scorer = PromptModel.for_task(
        loaded.model, loaded.tokenizer, task_file.task, task_file.prompt(), kind=loaded.kind
    )
    trainer = Trainer(
        scorer,
        task_file.task,
        make_config(backend),
        TrainingArguments(max_steps=steps, batch_size=8, eval_every=0),
        train,
    )
    started = time.perf_counter()
    result = trainer.train(progress=False)  # seconds_per_step: the median step (first-step warm-up aside)
    wall = time.perf_counter() - started
    state = save({n: t.detach().contiguous() for n, t in trainer.trainable_state().items()})
    return {
        "backend": backend,
        "trainable_parameters": trainer.trainable,
        "total_parameters": trainer.total,
        "state_bytes": len(state),
        "seconds_per_step": result.seconds_per_step,
        "wall_seconds": wall,
        "peak_memory_mb": memory.peak_mb(),
    }


def prompt_accuracy(root: Path) -> dict[str, dict[str, dict]]:
    """{task: {backend: summary row}} for the prompt-based runs under the few-shot results root."""
    from lmbff.report import find_metrics, summarize

    found: dict[str, dict[str, dict]] = {}
    for row in summarize(find_metrics([root])):
        if row["method"] == "prompt":
            found.setdefault(row["task"], {})[row["backend"]] = row
    return found


def backend_table(cost: list[dict], accuracy: dict[str, dict[str, dict]]) -> str:
    """One row per measured backend: its cost with ratios to ``full``, then per task the test accuracy
    mean (std) over seeds and its difference to ``full`` in points (a seed count when not all five)."""
    from lmbff.files import markdown_table

    full = next((r for r in cost if r["backend"] == "full"), None)
    tasks = sorted(accuracy)

    def with_ratio(r: dict, key: str, fmt: str, scale: float = 1.0) -> str:
        text = format(r[key] * scale, fmt)
        return f"{text} ({r[key] / full[key]:.3g}x)" if full else text

    def score(task: str, backend: str) -> str:
        row = accuracy[task].get(backend)
        if row is None:
            return "n/a"
        name = row["metric"]
        text = f"{100 * row['mean'][name]:.1f} ({100 * row['std'][name]:.1f})"
        reference = accuracy[task].get("full")
        if reference is not None and backend != "full":
            text += f" [{100 * (row['mean'][name] - reference['mean'][name]):+.1f}]"
        if len(row["seeds"]) < 5:
            text += f", {len(row['seeds'])} of 5 seeds"
        return text

    return markdown_table(
        [*COST_COLUMNS, *(f"{task} accuracy [vs full]" for task in tasks)],
        [
            [
                r["backend"],
                f"{r['trainable_parameters']:,} "
                f"({100 * r['trainable_parameters'] / r['total_parameters']:.3f}%)",
                with_ratio(r, "state_bytes", ".2f", 2**-20),
                with_ratio(r, "seconds_per_step", ".2f"),
                with_ratio(r, "peak_memory_mb", ".0f"),
                *(score(task, r["backend"]) for task in tasks),
            ]
            for r in cost
        ],
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="full,ln,prompt,prefix,lora,adapter,prefix+ln,unipelt")
    parser.add_argument("--model", default="gemma-3-270m")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data/SST-2/k-shot/16-42"))
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # the per-backend worker
    parser.add_argument("--accuracy-from", type=Path, default=Path("benchmarks/results/few_shot"))
    parser.add_argument("--table-only", action="store_true", help="rebuild the table from cost.json")
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure(args.one, args.model, args.steps, args.data_dir)))
        return 0
    if not args.table_only and not args.data_dir.is_dir():
        print(f"no data at {args.data_dir}; pass --data-dir (a k-shot split of SST-2)", file=sys.stderr)
        return 2
    rows = json.loads((OUT / "cost.json").read_text()) if args.table_only else []
    for backend in [] if args.table_only else args.backends.split(","):
        worker = [
            sys.executable,
            __file__,
            "--one",
            backend,
            "--model",
            args.model,
            "--steps",
            str(args.steps),
        ]
        done = subprocess.run([*worker, "--data-dir", str(args.data_dir)], capture_output=True, text=True)
        if done.returncode:
            print(f"{backend}: failed\n{done.stderr[-2000:]}", file=sys.stderr)
            return done.returncode
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    from lmbff.files import atomic_write_json, atomic_write_text

    if not args.table_only:
        atomic_write_json(OUT / "cost.json", rows)
    accuracy = prompt_accuracy(args.accuracy_from) if args.accuracy_from.is_dir() else {}
    table = backend_table(rows, accuracy)
    title = (
        f"# Tuning backends on {args.model}\n\nCost: one SST-2 batch of 8, LM-BFF's template. Accuracy: "
        "K=16 test accuracy, mean (std) over seeds, [difference to full in points], from "
        f"{args.accuracy_from}.\n\n"
    )
    atomic_write_text(OUT / "cost.md", f"{title}{table}\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
