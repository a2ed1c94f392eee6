"""What each tuning backend costs on the embedded model, relative to full fine-tuning in the same run,
in each precision.

    python benchmarks/backend_cost.py --backends none,full,full-lean,ln,lora --precisions fp32,bf16 --infer 64

Each (backend, precision) runs in its own process (so peak memory is its own): the model is loaded in
that precision, the backend applied, ``--steps`` optimizer steps are taken on the same batch of 8
(SST-2 and LM-BFF's template; ``--task`` and ``--template`` time another task file's, e.g. a pair
task's slot-last variant; seconds per step is their median, which the first step's warm-up does not
move), the exported state is measured, and the first ``--infer`` test examples are scored with the
trained model (examples per second). ``none`` is the model as loaded (inference only);
``full-lean`` is full fine-tuning with the vocabulary matrices frozen (``--full-embeddings frozen``).
Prints and writes a table with trainable parameters (% of the model), saved-state size, seconds per
step and peak memory, each with its ratio to ``full``, and one per precision pair with the bf16 /
fp32 speed-ups of the same backend (results/backend_cost/cost.md, cost.json). The CPU's bf16
capabilities (``torch.cpu.get_capabilities()``) are written beside them: without avx512_bf16 or AMX,
bf16 arithmetic is emulated and far slower than fp32.

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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lmbff_tasks import resolve_backend  # the benchmarks' shared module, beside this file

from lmbff.cli.common import non_negative_int, positive_int

OUT = Path("benchmarks/results/backend_cost")
# The batch timed by default. Its table also shows the accuracy of every task with finished runs
# (SST-2's and TREC's), since their costs are this batch's; another task shows only its own.
DEFAULT_TASK = "SST-2"


def measure(
    backend: str,
    model: str,
    steps: int,
    data_dir: Path,
    precision: str,
    infer: int,
    task: str = DEFAULT_TASK,
    template: str | None = None,
) -> dict:
    from safetensors.torch import save

    from lmbff.data import load_split
    from lmbff.memory import PeakMemory
    from lmbff.model import PromptModel
    from lmbff.pretrained import load_model
    from lmbff.train import Trainer, TrainingArguments
    from lmbff.tuning import make_config
    from prompts.library import load_task

    memory = PeakMemory()
    task_file = load_task(task)
    train = load_split(data_dir, "train", task_file.task).examples[:8]
    test = load_split(data_dir, "test", task_file.task).examples[:infer]
    prompt = task_file.prompt(template)
    loaded = load_model(model, precision=precision)
    scorer = PromptModel.for_task(loaded.model, loaded.tokenizer, task_file.task, prompt, kind=loaded.kind)
    row = {
        "backend": backend,
        "precision": loaded.precision,
        "task": task,
        "template": prompt.name,
        "scoring": scorer.scoring.name,
    }
    if backend != "none":
        name, options = resolve_backend(backend)
        trainer = Trainer(
            scorer,
            task_file.task,
            make_config(name, options),
            TrainingArguments(max_steps=steps, batch_size=8, eval_every=0),
            train,
        )
        started = time.perf_counter()
        result = trainer.train(progress=False)  # seconds_per_step: the median step (warm-up aside)
        wall = time.perf_counter() - started
        state = save({n: t.detach().contiguous() for n, t in trainer.trainable_state().items()})
        row.update(
            trainable_parameters=trainer.trainable,
            total_parameters=trainer.total,
            state_bytes=len(state),
            seconds_per_step=result.seconds_per_step,
            wall_seconds=wall,
        )
    if infer:
        scorer.predict_log_scores(test[:16])  # warm-up, not timed
        started = time.perf_counter()
        scorer.predict_log_scores(test)
        row["inference_examples_per_second"] = len(test) / (time.perf_counter() - started)
    row["peak_memory_mb"] = memory.peak_mb()
    return row


def cpu_bf16() -> dict:
    """What the CPU reports of its bf16 arithmetic (and the core count): the context of every timing."""
    import torch

    capabilities = torch.cpu.get_capabilities()
    keys = ("cpu_name", "num_physical_cores", "avx512_bf16", "amx_bf16", "avx2")
    return {k: capabilities.get(k) for k in keys}


def precision_table(rows: list[dict]) -> str:
    """One row per backend measured in both fp32 and bf16: the bf16 / fp32 speed-ups."""
    from lmbff.files import markdown_table

    by = {(r["backend"], r.get("precision", "fp32")): r for r in rows}
    backends = [
        b for b in dict.fromkeys(r["backend"] for r in rows) if (b, "fp32") in by and (b, "bf16") in by
    ]
    if not backends:  # one precision measured: no section, rather than a header over nothing
        return ""

    def pair(backend: str, key: str, fmt: str, faster_when_smaller: bool) -> str:
        a, b = by[(backend, "fp32")].get(key), by[(backend, "bf16")].get(key)
        if a is None or b is None:
            return "n/a"
        speedup = a / b if faster_when_smaller else b / a
        return f"{format(a, fmt)} -> {format(b, fmt)} ({speedup:.2f}x)"

    return markdown_table(
        ["backend", "s / step fp32 -> bf16 (speed-up)", "inference ex/s fp32 -> bf16 (speed-up)", "peak MB"],
        [
            [
                b,
                pair(b, "seconds_per_step", ".2f", True),
                pair(b, "inference_examples_per_second", ".1f", False),
                f"{by[(b, 'fp32')]['peak_memory_mb']:.0f} -> {by[(b, 'bf16')]['peak_memory_mb']:.0f}",
            ]
            for b in backends
        ],
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--backends", default="none,full,full-lean,ln,soft-prompt,prefix,lora,adapter,prefix+ln,unipelt"
    )
    parser.add_argument("--precisions", default="fp32,bf16", help="comma-separated: fp32, bf16, auto")
    parser.add_argument("--infer", type=non_negative_int, default=64, help="test examples scored (0: none)")
    parser.add_argument("--task", default=DEFAULT_TASK, help="task file whose batch and template are timed")
    parser.add_argument("--template", default=None, help="a template of the task file (default: its own)")
    parser.add_argument("--model", default="gemma-3-270m")
    parser.add_argument("--steps", type=positive_int, default=6)
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="a k-shot split (default: ../shared/data/TASK/k-shot/16-42)",
    )
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # the per-backend worker
    parser.add_argument("--accuracy-from", type=Path, default=Path("benchmarks/results/few_shot"))
    parser.add_argument("--table-only", action="store_true", help="rebuild the table from cost.json")
    parser.add_argument(
        "--out", type=Path, default=OUT, help="folder for cost.json, cpu.json and cost.md (one machine each)"
    )
    parser.add_argument("--precision", default="fp32", help=argparse.SUPPRESS)  # the worker's
    args = parser.parse_args(argv)
    if args.data_dir is None:
        args.data_dir = Path(f"../shared/data/{args.task}/k-shot/16-42")
    if args.one:
        row = measure(
            args.one,
            args.model,
            args.steps,
            args.data_dir,
            args.precision,
            args.infer,
            args.task,
            args.template,
        )
        print(json.dumps(row))
        return 0
    if not args.table_only:
        from prompts.errors import LmbffError
        from prompts.library import load_task

        try:  # a bad task or template name, before any model loads
            load_task(args.task).prompt(args.template)
        except (FileNotFoundError, LmbffError) as error:
            print(f"--task/--template: {error}", file=sys.stderr)
            return 2
    if not args.table_only and not args.data_dir.is_dir():
        print(f"no data at {args.data_dir}; pass --data-dir (a k-shot split of {args.task})", file=sys.stderr)
        return 2
    out = args.out
    rows = json.loads((out / "cost.json").read_text()) if args.table_only else []
    jobs = [(b, p) for b in args.backends.split(",") for p in args.precisions.split(",")]
    for backend, precision in [] if args.table_only else jobs:
        worker = [
            sys.executable,
            __file__,
            "--one",
            backend,
            "--model",
            args.model,
            "--steps",
            str(args.steps),
            "--precision",
            precision,
            "--infer",
            str(args.infer),
            "--task",
            args.task,
            *(["--template", args.template] if args.template else []),
        ]
        done = subprocess.run([*worker, "--data-dir", str(args.data_dir)], capture_output=True, text=True)
        if done.returncode:
            print(f"{backend}: failed\n{done.stderr[-2000:]}", file=sys.stderr)
            return done.returncode
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    from lmbff.files import atomic_write_json, atomic_write_text

    if not args.table_only:
        atomic_write_json(out / "cost.json", rows)
        atomic_write_json(out / "cpu.json", cpu_bf16())
    accuracy = prompt_accuracy(args.accuracy_from) if args.accuracy_from.is_dir() else {}
    if args.task != DEFAULT_TASK or args.template:
        # Another task's batch: SST-2's and TREC's accuracy would sit beside costs they did not pay.
        accuracy = {task: rows for task, rows in accuracy.items() if task == args.task}
    trained = [r for r in rows if r.get("precision", "fp32") == "fp32" and "seconds_per_step" in r]
    table = backend_table(trained, accuracy) if trained else ""
    cpu = json.loads((out / "cpu.json").read_text()) if (out / "cpu.json").exists() else {}
    title = (
        f"# Tuning backends on {args.model}\n\nCost: one {args.task} batch of 8, template "
        f"{args.template or 'lmbff (LM-BFF)'}, fp32."
        + (
            " Accuracy: K=16 test accuracy, mean (std) over seeds, [difference to full in points], from "
            f"{args.accuracy_from}."
            if accuracy
            else ""
        )
        + "\n\n"
    )
    precisions = precision_table(rows)
    text = f"{title}{table}\n"
    if precisions:
        text += f"\n## bf16 against fp32\n\nCPU: {json.dumps(cpu)}\n\n{precisions}\n"
    atomic_write_text(out / "cost.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
