"""Zero-shot accuracy of a model on LM-BFF's single-sentence tasks, with and without calibration, and
scoring throughput and peak memory against the obvious baseline in the same run.

The baseline is what one writes with plain `transformers`: one example at a time, the model's full
output (vocabulary-sized logits at every position), then the label words' entries at the slot. Both
sides score the same examples with the same model and must agree on the predictions.

    python benchmarks/zero_shot.py --data-root ../shared/data --out benchmarks/results/zero_shot

Writes <out>/zero_shot.json, <out>/zero_shot.md and <out>/zero_shot.png; tasks already in the JSON
are kept (the run resumes), each task's result is written as soon as it is done.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import torch

from lmbff.cli.common import positive_int
from lmbff.data import load_split
from lmbff.evaluate import zero_shot
from lmbff.files import atomic_write_json, atomic_write_text, markdown_table
from lmbff.memory import PeakMemory
from lmbff.model import PromptModel
from lmbff.pretrained import DEFAULT_MODEL, load_model
from prompts.library import load_task

TASKS = ["SST-2", "SST-5", "MR", "CR", "MPQA", "Subj", "TREC"]


@torch.inference_mode()
def naive_predictions(pm: PromptModel, examples) -> np.ndarray:
    """The baseline: per example, full logits over the vocabulary at every position of every sequence."""
    lm, tok = pm.lm, pm.tokenizer
    predictions = []
    for example in examples:
        before, after = pm.template.render_parts(example.fields)
        if pm.mode == "next_token":
            ids = tok(before.rstrip(), return_tensors="pt")["input_ids"]
            logits = lm(input_ids=ids).logits[0, -1]  # (vocab,) taken from (positions, vocab)
            scores = [float(logits[w[0]]) for w in pm.words.word_ids]
        elif pm.mode == "sequence":
            scores = []
            for word_ids in pm.words.word_ids:
                word = tok.decode(list(word_ids))
                ids = tok(before + word + after, return_tensors="pt")["input_ids"]
                logprobs = lm(input_ids=ids).logits[0].log_softmax(-1)
                start = len(tok(before, add_special_tokens=True)["input_ids"])
                scores.append(float(sum(logprobs[t - 1, ids[0, t]] for t in range(start, ids.shape[1]))))
        else:
            text = before + tok.mask_token + after
            inputs = tok(text, return_tensors="pt")
            position = int((inputs["input_ids"][0] == tok.mask_token_id).nonzero()[0])
            logits = lm(**inputs).logits[0, position]
            scores = [float(logits[w[0]]) for w in pm.words.word_ids]
        predictions.append(int(np.argmax(scores)))
    return np.array(predictions)


def measure_phase(phase: str, model: str, task_name: str, data_root: Path, n: int, batch_size: int) -> dict:
    """One side of the throughput comparison, in this (fresh) process."""
    loaded = load_model(model)
    task_file = load_task(task_name)
    examples = load_split(data_root / task_name, "test", task_file.task, skip_bad=True).examples[:n]
    pm = PromptModel.for_task(
        loaded.model, loaded.tokenizer, task_file.task, task_file.prompt(), kind=loaded.kind
    )

    def predict(chosen):
        if phase == "toolkit":
            return pm.predict_log_scores(chosen, batch_size=batch_size).argmax(1)
        return naive_predictions(pm, chosen)

    predict(examples[:2])  # warm-up
    memory = PeakMemory()  # the measured phase starts here
    start = time.perf_counter()
    predictions = predict(examples)
    seconds = time.perf_counter() - start
    return {
        "mode": pm.mode,
        "examples": len(examples),
        "seconds": seconds,
        "peak_mb": memory.above_start_mb(),
        "predictions": [int(p) for p in predictions],
    }


def throughput(model: str, task_name: str, data_root: Path, n: int, batch_size: int) -> dict:
    sides = {}
    for phase in ("toolkit", "naive"):
        command = [
            sys.executable,
            __file__,
            "--phase",
            phase,
            "--model",
            model,
            "--tasks",
            task_name,
            "--data-root",
            str(data_root),
            "--throughput-n",
            str(n),
            "--batch-size",
            str(batch_size),
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        sides[phase] = json.loads(done.stdout.strip().splitlines()[-1])
    ours, naive = sides["toolkit"], sides["naive"]
    agreement = np.mean(np.array(ours["predictions"]) == np.array(naive["predictions"]))
    return {
        "task": task_name,
        "mode": ours["mode"],
        "examples": ours["examples"],
        "toolkit_examples_per_s": ours["examples"] / ours["seconds"],
        "naive_examples_per_s": naive["examples"] / naive["seconds"],
        "speedup": naive["seconds"] / ours["seconds"],
        "toolkit_peak_mb": ours["peak_mb"],
        "naive_peak_mb": naive["peak_mb"],
        "prediction_agreement": float(agreement),
    }


def accuracy(loaded, task_name: str, data_root: Path, batch_size: int, limit: int | None) -> dict:
    task_file = load_task(task_name)
    # LM-BFF's CR test file has an empty (whitespace-only) text: skipped and counted, as --skip-bad does.
    report = load_split(data_root / task_name, "test", task_file.task, skip_bad=True)
    examples = report.examples[:limit]
    pm = PromptModel.for_task(
        loaded.model, loaded.tokenizer, task_file.task, task_file.prompt(), kind=loaded.kind
    )
    run, _ = zero_shot(pm, task_file.task, examples, batch_size=batch_size, template_name="lmbff")
    raw, calibrated = run.results
    return {
        "task": task_name,
        "metric": task_file.task.metric,
        "examples": len(examples),
        "mode": pm.mode,
        "zero_shot": raw.score,
        "calibrated": calibrated.score,
        "seconds": run.seconds,
        "examples_per_s": run.examples_per_second,
        "skipped_rows": len(report.skipped),
        "content_free_probs": run.content_free_probs,
    }


def write_report(results: dict, out: Path) -> None:
    atomic_write_json(out / "zero_shot.json", results)
    acc_rows = [
        [
            r["task"],
            f"{r['examples']} ({r['skipped_rows']} empty skipped)"
            if r.get("skipped_rows")
            else r["examples"],
            r["mode"],
            100 * r["zero_shot"],
            100 * r["calibrated"],
            r["examples_per_s"],
        ]
        for r in results["accuracy"].values()
    ]
    text = f"# Zero-shot, model {results['model']}\n\n{results['machine']}\n\n"
    text += markdown_table(
        ["task", "test examples", "scoring", "zero-shot acc.", "+ calibration acc.", "examples/s"], acc_rows
    )
    if results["throughput"]:
        text += "\n## Throughput against a naive per-example full-vocabulary loop\n\n"
        text += markdown_table(
            [
                "task",
                "scoring",
                "examples",
                "toolkit ex/s",
                "naive ex/s",
                "speed-up",
                "toolkit peak MB",
                "naive peak MB",
                "same predictions",
            ],
            [
                [
                    r["task"],
                    r["mode"],
                    r["examples"],
                    r["toolkit_examples_per_s"],
                    r["naive_examples_per_s"],
                    f"{r['speedup']:.2f}x",
                    r["toolkit_peak_mb"],
                    r["naive_peak_mb"],
                    f"{100 * r['prediction_agreement']:.1f}%",
                ]
                for r in results["throughput"].values()
            ],
        )
    atomic_write_text(out / "zero_shot.md", text)
    if results["accuracy"]:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        names = list(results["accuracy"])
        x = np.arange(len(names))
        fig, ax = plt.subplots(figsize=(7, 3.5))
        ax.bar(x - 0.2, [100 * results["accuracy"][n]["zero_shot"] for n in names], 0.4, label="zero-shot")
        ax.bar(
            x + 0.2, [100 * results["accuracy"][n]["calibrated"] for n in names], 0.4, label="+ calibration"
        )
        ax.set_xticks(x, names)
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"Zero-shot, {results['model']}, LM-BFF manual templates")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "zero_shot.png.tmp", format="png", dpi=120)
        os.replace(out / "zero_shot.png.tmp", out / "zero_shot.png")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument(
        "--limit", type=positive_int, default=None, help="test examples per task (default: all)"
    )
    parser.add_argument("--batch-size", type=positive_int, default=16)
    parser.add_argument(
        "--throughput-n", type=positive_int, default=100, help="examples for the baseline comparison"
    )
    parser.add_argument("--throughput-tasks", default="SST-2,TREC")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/zero_shot"))
    parser.add_argument("--phase", choices=["toolkit", "naive"], help=argparse.SUPPRESS)  # one measured side
    args = parser.parse_args(argv)
    if args.phase:
        result = measure_phase(
            args.phase, args.model, args.tasks, args.data_root, args.throughput_n, args.batch_size
        )
        print(json.dumps(result))
        return 0
    if not args.data_root.is_dir():
        print(f"no benchmark data at {args.data_root}; pass --data-root", file=sys.stderr)
        return 2
    path = args.out / "zero_shot.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    if results.get("model") != args.model:
        results = {"model": args.model, "accuracy": {}, "throughput": {}}
    results["machine"] = (
        f"{platform.machine()}, {psutil.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    for name in [t for t in args.throughput_tasks.split(",") if t]:
        if name not in results["throughput"]:
            results["throughput"][name] = throughput(
                args.model, name, args.data_root, args.throughput_n, args.batch_size
            )
            write_report(results, args.out)
            print(json.dumps(results["throughput"][name]), flush=True)
    loaded = load_model(args.model)
    for name in [t for t in args.tasks.split(",") if t]:
        if name not in results["accuracy"]:
            results["accuracy"][name] = accuracy(loaded, name, args.data_root, args.batch_size, args.limit)
            write_report(results, args.out)
            print(json.dumps(results["accuracy"][name]), flush=True)
    print((args.out / "zero_shot.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
