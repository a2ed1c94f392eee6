"""Cheaper ways to score multi-token label words, measured on dev before any is offered (issue 36).

    python benchmarks/word_scoring.py --work ~/.cache/lmbff/clinc150 --tasks clinc-banking,clinc150 \
        --dev-sample 300 --out benchmarks/results/word_scoring

Zero-shot on the embedded default (bf16, 2 cores), the template of ``benchmarks/many_classes.py``, on
each task's seed-13 8-shot dev rows (in scope only; ``--dev-sample`` draws a seeded sample), raw and
calibrated, for four ways of scoring a class from its label words:

- ``full``: the toolkit's scoring: every token of a word, each normalised over the whole vocabulary, on
  the shared prefix (the text before the slot runs once per example);
- ``label-norm``: the same tokens, each normalised over the label words' tokens only (the output layer
  is computed for those rows only, not the 262,144 of the vocabulary);
- ``first-token``: a word's first token at the slot only (one position per example); words of two
  classes that start with the same token score the same, so the count of such classes is reported;
- ``word-prototype``: the cosine of the slot feature with the mean of the words' unit output-embedding
  rows (the ``words`` init of a prototype verbalizer, untrained; one position per example).

Per row: accuracy, macro-F1, examples per second (one method at a time, in one process).
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch

TEMPLATE = "{{ text }} The request is about {{ mask }}"
METHODS = ("full", "label-norm", "first-token", "word-prototype")


def _read(path: Path) -> tuple[list[str], list[str]]:
    lines = path.read_text(encoding="utf-8").splitlines()[1:]
    rows = [line.split("\t") for line in lines if line]
    return [r[0] for r in rows], [r[1] for r in rows]


def _label_norm(pm) -> None:
    """Normalise every read over the label words' tokens: the full-vocabulary output product is replaced
    by one over those rows, the other logits set to -inf (the log-softmax then spans the label tokens)."""
    tokens = torch.tensor(sorted({t for w in pm.words.word_ids for t in w}))
    original = pm._output_logits

    def restricted(features, rows=None):
        if rows is not None:
            return original(features, rows)
        picked = original(features, tokens.to(features.device))
        vocab = pm.base_lm.get_output_embeddings().weight.shape[0]
        out = picked.new_full((*picked.shape[:-1], vocab), float("-inf"))
        out[..., tokens] = picked
        return out

    pm._output_logits = restricted


def _first_token(pm) -> int:
    """Keep each word's first token; returns the number of classes that share a first token with another."""
    from prompts.verbalizer import TokenizedVerbalizer

    words = pm.words
    pm.words = TokenizedVerbalizer(tuple(w[:1] for w in words.word_ids), words.word_label, words.num_labels)
    pm.encoder.slot_length = 1
    owners: dict[int, set[int]] = {}
    for ids, label in zip(words.word_ids, words.word_label, strict=True):
        owners.setdefault(ids[0], set()).add(label)
    return len({label for group in owners.values() if len(group) > 1 for label in group})


def run(args) -> None:
    from sklearn.metrics import accuracy_score, f1_score

    from lmbff.classifier import PromptClassifier
    from lmbff.data import Example

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for task in args.tasks.split(","):
        folder = Path(args.work).expanduser() / task
        labels = json.loads((folder / "labels.json").read_text())
        texts, gold = _read(folder / "8-13" / "dev.tsv")
        keep = [i for i, y in enumerate(gold) if y != "oos"]
        if args.dev_sample and len(keep) > args.dev_sample:
            keep = sorted(random.Random(0).sample(keep, args.dev_sample))
        texts, gold = [texts[i] for i in keep], [gold[i] for i in keep]
        examples = [Example({"text": t}) for t in texts]
        for method in args.methods.split(","):
            clf = PromptClassifier.zero_shot(labels, TEMPLATE, calibrate=False, precision="bf16")
            pm = clf.prompt_model_
            shared = 0
            if method == "label-norm":
                _label_norm(pm)
            elif method == "first-token":
                shared = _first_token(pm)
            elif method == "word-prototype":
                pm.use_prototypes("prototype")
                layer = pm.prototypes
                layer.start_from(pm._word_prototypes(), torch.zeros_like(layer.center), 10.0)
            for calibrate in (False, True):
                pm.calibration = None
                if calibrate:
                    pm.calibrate()
                started = time.perf_counter()
                scores = pm.predict_log_scores(examples, calibrate=calibrate)
                seconds = time.perf_counter() - started
                predicted = [labels[i] for i in np.argmax(scores, axis=1)]
                row = {
                    "task": task, "method": method, "calibrated": calibrate, "examples": len(texts),
                    "accuracy": accuracy_score(gold, predicted),
                    "macro_f1": f1_score(gold, predicted, average="macro", labels=labels, zero_division=0),
                    "examples_per_second": len(texts) / seconds, "classes_sharing_first_token": shared,
                    "first_predicted_share": Counter(predicted).most_common(1)[0][1] / len(predicted),
                }  # fmt: skip
                rows.append(row)
                print(json.dumps(row), flush=True)
                with (out / "results.jsonl").open("a", encoding="utf-8") as f:
                    f.write(json.dumps(row) + "\n")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--work", default="~/.cache/lmbff/clinc150")
    p.add_argument("--tasks", default="clinc-banking,clinc150")
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--dev-sample", type=int, default=300)
    p.add_argument("--out", default="benchmarks/results/word_scoring")
    run(p.parse_args())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
