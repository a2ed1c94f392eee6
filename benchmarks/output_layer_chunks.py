"""Sequence scoring (a causal LM whose slot has text after it: LM-BFF's pair templates) with the
full-vocabulary log-softmax in chunks of 64 positions (lmbff 0.1's fixed chunk) against chunks sized
by the logits budget (``lmbff.model._LOGITS_CHUNK_BYTES``: 512 rows for Gemma 3's vocabulary).

    python benchmarks/output_layer_chunks.py --data-root ../shared/data --task QNLI --examples 32

Zero-shot with the task's default (LM-BFF) template, raw scores, on a seeded sample of the test set.
Both ways score the same examples alternately (A, B, A, B) so that a busy machine hurts both alike;
printed: seconds per example each way (median of runs), the ratio, the largest score difference and
each way's peak memory above the loaded model.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

import lmbff.model as model_module
from lmbff.classifier import PromptClassifier
from lmbff.cli.common import positive_int
from lmbff.data import load_split
from lmbff.memory import PeakMemory

OLD_CHUNK_ROWS = 64  # lmbff 0.1: _LOGSOFTMAX_CHUNK


def timed(pm, examples, chunk_bytes: int) -> tuple[float, np.ndarray, float]:
    original = model_module._LOGITS_CHUNK_BYTES
    model_module._LOGITS_CHUNK_BYTES = chunk_bytes
    try:
        memory = PeakMemory()
        started = time.perf_counter()
        scores = pm.predict_log_scores(examples, calibrate=False)
        return time.perf_counter() - started, scores, memory.above_start_mb()
    finally:
        model_module._LOGITS_CHUNK_BYTES = original


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    parser.add_argument("--task", default="QNLI")
    parser.add_argument("--model", default="gemma-3-270m")
    parser.add_argument("--examples", type=positive_int, default=32)
    parser.add_argument("--repeats", type=positive_int, default=2)
    args = parser.parse_args(argv)
    folder = args.data_root / args.task
    if not (folder / "test.tsv").is_file():
        print(f"no test set in {folder}; pass --data-root", file=sys.stderr)
        return 2
    clf = PromptClassifier(
        args.task, args.model, method="zero-shot", calibrate=False, verbose=False, precision="fp32"
    )
    clf.fit(None)
    pm = clf.prompt_model_
    everything = load_split(folder, "test", clf.task_).examples
    # pandas' seeded sample of positions: the examples the README's figures were measured on
    picked = pd.Series(range(len(everything))).sample(min(args.examples, len(everything)), random_state=0)
    examples = [everything[i] for i in picked]
    vocab = pm.base_lm.get_output_embeddings().weight.shape[0]
    ways = {
        f"chunks of {OLD_CHUNK_ROWS} positions": OLD_CHUNK_ROWS * 4 * vocab,
        f"chunks of {model_module.logits_chunk_rows(vocab)} positions": model_module._LOGITS_CHUNK_BYTES,
    }
    timed(pm, examples[:2], model_module._LOGITS_CHUNK_BYTES)  # first-call costs out of the measurement
    seconds: dict[str, list[float]] = {name: [] for name in ways}
    peaks: dict[str, float] = {}
    scores: dict[str, np.ndarray] = {}
    for _ in range(args.repeats):
        for name, chunk_bytes in ways.items():
            took, scores[name], peak = timed(pm, examples, chunk_bytes)
            seconds[name].append(took)
            peaks[name] = max(peak, peaks.get(name, 0.0))
    old, new = (float(np.median(seconds[name])) for name in ways)
    first, second = (scores[name] for name in ways)
    print(f"{args.model}, {args.task} zero-shot ({pm.scoring.name} scoring), {len(examples)} test examples")
    print("| log-softmax | s / example (median) | peak MB above the model |\n|---|---|---|")
    for name in ways:
        print(f"| {name} | {np.median(seconds[name]) / len(examples):.3f} | {peaks[name]:.0f} |")
    difference = float(np.abs(first - second).max())
    print(f"\nlarger chunks are {old / new:.2f}x faster; largest score difference {difference:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
