"""Causal-LM scoring with the text before the slot computed once per example (shared prefix, cached
keys and values) against one full row per label word, on GCP's event passages from GENEVA.

    python benchmarks/shared_prefix.py --data-root ../shared/data --sentences 12

Both ways score the same passages with the embedded default model, alternately (A, B, A, B) so that
a busy machine hurts both alike; printed: seconds per event each way, the ratio, the largest score
difference, and peak memory.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from lmbff.cli.common import positive_int
from lmbff.events.data import read_events
from lmbff.events.pipeline import ontology_from_events
from lmbff.events.scoring import RoleScorer
from lmbff.memory import PeakMemory
from lmbff.model import PromptModel
from lmbff.pretrained import load_model
from prompts.event_prompts import load_event_prompts


def timed_slots(scorer: RoleScorer, sentences, shared: bool) -> tuple[float, list]:
    original = PromptModel.shares_prefix
    if not shared:
        PromptModel.shares_prefix = property(lambda self: False)
    try:
        started = time.perf_counter()
        slots = scorer.slots(sentences)
        return time.perf_counter() - started, slots
    finally:
        PromptModel.shares_prefix = original


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    parser.add_argument("--model", default="gemma-3-270m")
    parser.add_argument("--sentences", type=positive_int, default=12)
    parser.add_argument("--repeats", type=positive_int, default=2)
    args = parser.parse_args(argv)
    data = args.data_root / "geneva" / "test.json"
    if not data.is_file():
        print(f"no GENEVA data at {data}; pass --data-root", file=sys.stderr)
        return 2
    memory = PeakMemory()
    everything = read_events(data)
    sentences = everything[: args.sentences]
    events = sum(len(s.events) for s in sentences)
    loaded = load_model(args.model)
    scorer = RoleScorer(
        loaded.model,
        loaded.tokenizer,
        loaded.kind,
        ontology_from_events(everything),
        load_event_prompts(None),
    )
    timed_slots(scorer, sentences[:1], True)  # first-call costs out of the measurement
    seconds = {True: [], False: []}
    scores = {}
    for _ in range(args.repeats):
        for shared in (True, False):
            took, slots = timed_slots(scorer, sentences, shared)
            seconds[shared].append(took)
            scores[shared] = np.concatenate([s.scores for per in slots for s in per])
    difference = float(np.abs(scores[True] - scores[False]).max())
    rows, shared = np.median(seconds[False]), np.median(seconds[True])
    print(
        f"{args.model}, GENEVA first {args.sentences} sentences: {events} events, "
        f"{len(scores[True])} role scores"
    )
    print("| scoring | s / event (median of runs) |\n|---|---|")
    print(f"| one row per label word | {rows / events:.2f} |")
    print(f"| shared prefix, cached | {shared / events:.2f} |")
    print(f"\nshared prefix is {rows / shared:.2f}x faster; largest score difference {difference:.2e}")
    print(f"peak memory {memory.peak_mb():.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
