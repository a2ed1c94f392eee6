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

from lmbff.report import backend_table, prompt_accuracy

OUT = Path("benchmarks/results/backend_cost")


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
