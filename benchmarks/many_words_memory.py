"""Peak memory and time of one training step (forward and backward) on the embedded default model
with many phrase-like label words: CLINC150's first N intent names as words ("card arrival"), a
batch of 8 queries, LoRA (the fast preset's backend), bf16 where the machine multiplies it natively.

    python benchmarks/many_words_memory.py --data-root ../shared/data --words 2,15,77,150 \
        --paths rows,shared --out benchmarks/results/many_words_memory

Two ways of scoring the same batch: ``rows`` (one full row per example and word: how training scored
before issue 36) and ``shared`` (the text before the slot once per example, each word's tokens on
its cached keys and values: how it trains now), and ``shared-multi-label`` (the same scoring for a
multi-label task, with its soft-target loss and two labels per query: its peak should be ``shared``'s,
and its scores the same). Each (words, way) runs in a fresh process, one at a
time, so each peak is its own (VmHWM); printed: the peak above the loaded model, the step's seconds,
and the largest difference between the two ways' scores. ``rows`` is skipped above
``--max-row-words`` (77 words at batch 8 ran out of 24 GB in the issue's trial).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

PATHS = ("rows", "shared", "shared-multi-label")
CHILD = r"""
import json, sys, time
import torch
from lmbff.inputs import to_examples
from lmbff.memory import PeakMemory
from lmbff.model import PromptModel
from lmbff.pretrained import load_model
from lmbff.tuning import make_config
from prompts.library import task_file_from_labels

spec = json.loads(sys.argv[1])
loaded = load_model("gemma-3-270m", precision=spec["precision"])
labels = spec["labels"]
words = [label.replace("_", " ") for label in labels]
multi_label = spec["path"] == "shared-multi-label"
task_file = task_file_from_labels(
    labels, "{{ text }} The request is about {{ mask }}", words, multi_label=multi_label,
    label_delimiter="|" if multi_label else None,
)
make_config("lora").apply(loaded.model)
pm = PromptModel.for_task(
    loaded.model, loaded.tokenizer, task_file.task, task_file.prompt(), kind=loaded.kind
)
pm.lm.eval()  # gradients flow; no dropout (LoRA's), so that the two ways' scores can be compared
encodings = pm.encode(to_examples(spec["texts"], ("text",)))
torch.manual_seed(0)
estimate = None
if spec["path"] != "rows":  # the plan's estimate (lmbff.memory_plan), measured before the step
    from lmbff.memory_plan import measure_step_memory

    trained = [p for p in pm.lm.parameters() if p.requires_grad]
    estimate = measure_step_memory(pm, encodings, trained).step_mb(len(encodings))
memory = PeakMemory()
started = time.perf_counter()
if spec["path"] == "rows":
    scores = pm.class_log_scores(pm.collate(encodings).to(pm.device), calibrate=False)
else:
    scores = pm.training_log_scores(encodings)
if multi_label:  # the multi-label loss on the same scores: two labels per query
    from lmbff.train import multi_label_loss

    label_sets = [(labels[i % len(labels)], labels[(i + 1) % len(labels)]) for i in range(len(encodings))]
    multi_label_loss(task_file.task, scores, label_sets, "softmax").backward()
else:
    scores[:, 0].sum().backward()
seconds = time.perf_counter() - started
print(json.dumps({
    "peak_above_model_mb": memory.above_start_mb(),
    "seconds": seconds,
    "scores": scores.detach().float().tolist(),
    "word_tokens": [len(w) for w in pm.words.word_ids],
    "shares_prefix": pm.shares_prefix,
    "estimate_mb": estimate,
}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-root", default="../shared/data")
    parser.add_argument(
        "--words", default="2,15,77,150", help="numbers of label words (intents), comma-separated"
    )
    parser.add_argument("--paths", default="rows,shared")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-row-words", type=int, default=15, help="rows is skipped above this many words")
    parser.add_argument("--precision", default="auto", choices=["fp32", "bf16", "auto"])
    parser.add_argument("--out", default="benchmarks/results/many_words_memory")
    args = parser.parse_args()
    counts = [int(n) for n in args.words.split(",")]
    if any(not 1 <= n <= 150 for n in counts) or not 1 <= args.batch_size <= 64:
        parser.error("--words are 1 to 150 intents; --batch-size 1 to 64")
    unknown = set(args.paths.split(",")) - set(PATHS)
    if unknown or args.max_row_words < 1:
        parser.error(
            f"--paths are some of {', '.join(PATHS)} (not {sorted(unknown)}); --max-row-words at least 1"
        )
    data = json.loads((Path(args.data_root) / "CLINC150" / "data_full.json").read_text())
    intents = list(dict.fromkeys(label for _, label in data["train"]))
    texts = [text for text, _ in data["test"][: args.batch_size]]
    results = []
    for n in counts:
        by_path = {}
        for path in args.paths.split(","):
            if path == "rows" and n > args.max_row_words:
                print(f"{n} words, rows: skipped (over --max-row-words {args.max_row_words})", flush=True)
                continue
            spec = {"labels": intents[:n], "texts": texts, "path": path, "precision": args.precision}
            started = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-c", CHILD, json.dumps(spec)], capture_output=True, text=True, check=False
            )
            if done.returncode != 0:
                print(done.stderr[-2000:], file=sys.stderr)
                return 1
            result = json.loads(done.stdout.strip().splitlines()[-1])
            by_path[path] = result
            print(
                f"{n} words ({sum(result['word_tokens'])} tokens), {path}: peak above the model "
                f"{result['peak_above_model_mb']:,.0f} MB, step {result['seconds']:.1f} s "
                f"(process {time.perf_counter() - started:.0f} s)"
                + (f"; the plan estimated {result['estimate_mb']:,.0f} MB" if result["estimate_mb"] else ""),
                flush=True,
            )
        row = {"words": n, "batch_size": args.batch_size, "precision": args.precision}
        for path, result in by_path.items():
            row[path] = {
                k: result[k] for k in ("peak_above_model_mb", "seconds", "shares_prefix", "estimate_mb")
            }
            row["word_tokens"] = sum(result["word_tokens"])
        import numpy as np

        for other, key in (
            ("rows", "largest_score_difference"),
            ("shared-multi-label", "multi_label_difference"),
        ):
            if {other, "shared"} <= set(by_path):
                difference = np.abs(
                    np.array(by_path[other]["scores"]) - np.array(by_path["shared"]["scores"])
                )
                row[key] = float(difference.max())
                print(f"  largest score difference {other} vs shared: {row[key]:.2e}")
        results.append(row)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(
        json.dumps({"command": " ".join(sys.argv), "results": results}, indent=2) + "\n"
    )
    print(f"wrote {out / 'report.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
