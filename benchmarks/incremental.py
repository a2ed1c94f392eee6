"""Class-incremental learning: classes arrive in phases; after each, accuracy on every class seen so far.

    python benchmarks/incremental.py run --task TREC --seeds 13,21,42,87,100 \
        --work ~/.cache/lmbff/incremental --out benchmarks/results/incremental
    python benchmarks/incremental.py run --task AGNews --seeds 13,21,42,87,100 --test-sample 2000 \
        --work ~/.cache/lmbff/incremental --out benchmarks/results/incremental

Phases: TREC's 6 question types in 3 phases of 2 (in label order: Description, Entity | Expression,
Human | Location, Number), AG News' 4 topics in 2 phases of 2 (World, Sports | Business, Sci/Tech).
Data: LM-BFF's 16-shot splits (TREC from ../shared/data; AG News staged by benchmarks/deploy.py under
~/.cache/lmbff/deploy-data, seeds 87 and 100 drawn here with ``lmbff split``): a phase trains on the
16 rows of each of its new classes; dev and test hold the rows of every class seen so far. Every model
is Gemma 3 270M with the prototype verbalizer and the ``fast`` preset's prototype recipe (LoRA at
3e-3, at least 3 epochs), on the causal template of each task (TREC ``answer_type``, AG News ``topic``).

Methods, after each phase:

- ``joint``: a fresh run on every class seen so far, with all their training rows (the upper bound:
  nothing is forgotten because nothing is learnt in phases);
- ``naive``: sequential tuning: the previous phase's state, its task grown by the new classes, tuned
  (LoRA and every prototype) on the new classes' rows only, with the same recipe (forgetting);
- ``prototypes``: ``lmbff train --from-state --new-labels`` (:mod:`lmbff.incremental`): the backbone's
  state and the old prototypes frozen, the new prototypes trained against the example memory;
- ``prototypes-no-memory``: the same without the example memory (what the memory does).

Phase 1 is one run (the first phase's classes), shared by every method. Each run is a fresh process
(its own peak memory), one at a time; ``<out>/<task>/<seed>/<method>-phase<p>.json`` (finished runs are
kept) and ``<out>/report.md``. States are kept under ``--work`` (outside the repository) for the next phase.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from isolated_runs import add_child_command, run_in_child, save_result, serve_child  # beside this file

ROOT = Path(__file__).resolve().parent.parent
SEEDS = (13, 21, 42, 87, 100)
TASKS = {
    "TREC": {
        "file": ROOT / "templates" / "TREC.yaml",
        "template": "answer_type",
        "phases": [["0", "1"], ["2", "3"], ["4", "5"]],
        "data": ROOT.parent / "shared" / "data" / "TREC",
    },
    "AGNews": {
        "file": ROOT / "benchmarks" / "tasks" / "AGNews.yaml",
        "template": "topic",
        "phases": [["World", "Sports"], ["Business", "Sci/Tech"]],
        "data": Path.home() / ".cache" / "lmbff" / "deploy-data" / "AGNews",
    },
}
METHODS = ("joint", "naive", "prototypes", "prototypes-no-memory")


# ---- data ----------------------------------------------------------------------------------------------
def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines(keepends=True)


def phase_data(task: str, seed: int, phase: int, work: Path, test_sample: int) -> Path:
    """``<work>/<task>/<seed>/data-phase<p>/{train,new,dev,test}.tsv``: ``train`` every seen class's
    rows (joint), ``new`` the phase's new classes' rows, ``dev`` and ``test`` the seen classes' rows."""
    import random

    spec = TASKS[task]
    folder = work / task / str(seed) / f"data-phase{phase}"
    if (folder / "test.tsv").exists():
        return folder
    source = spec["data"] / "k-shot" / f"16-{seed}"
    if not source.is_dir():
        subprocess.run(
            [sys.executable, "-m", "lmbff.cli", "split", "--task", str(spec["file"]),
             "--data-dir", str(spec["data"]), "--k", "16", "--seeds", str(seed),
             "--out", str(spec["data"] / "k-shot")],
            check=True,
        )  # fmt: skip
    seen = {label for labels in spec["phases"][: phase + 1] for label in labels}
    new = set(spec["phases"][phase])

    def rows(path: Path, keep: set) -> tuple[str, list[str]]:
        lines = _lines(path)
        header, body = lines[0], lines[1:]
        column = header.rstrip("\n").split("\t").index("label")
        return header, [line for line in body if line.rstrip("\n").split("\t")[column] in keep]

    folder.mkdir(parents=True, exist_ok=True)
    test_lines = _lines(spec["data"] / "test.tsv")
    if test_sample and len(test_lines) - 1 > test_sample:  # one seeded sample for every phase and method
        keep = sorted(random.Random(0).sample(range(1, len(test_lines)), test_sample))
        test_lines = [test_lines[0]] + [test_lines[i] for i in keep]
        (folder / "full-test.tsv").write_text("".join(test_lines), encoding="utf-8")
        test_path = folder / "full-test.tsv"
    else:
        test_path = spec["data"] / "test.tsv"
    for name, path, keep in (
        ("train", source / "train.tsv", seen),
        ("new", source / "train.tsv", new),
        ("dev", source / "dev.tsv", seen),
        ("test", test_path, seen),
    ):
        header, body = rows(path, keep)
        (folder / f"{name}.tsv").write_text(header + "".join(body), encoding="utf-8")
    return folder


def phase_task(task: str, phase: int, work: Path) -> Path:
    """A task file with the classes seen up to ``phase`` (the task's template and label words)."""
    from prompts.library import load_task_file

    spec = TASKS[task]
    path = work / task / f"task-phase{phase}.yaml"
    if path.exists():
        return path
    source = load_task_file(spec["file"])
    prompt = source.prompt(spec["template"])
    labels = [label for labels in spec["phases"][: phase + 1] for label in labels]
    words = {label: prompt.label_words[label] for label in labels}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"task:\n  name: {json.dumps(source.task.name)}\n  fields: {json.dumps(list(source.task.fields))}\n"
        f"  labels: {json.dumps(labels)}\n  metric: accuracy\ntemplates:\n  {spec['template']}:\n"
        f"    text: {json.dumps(prompt.template.text)}\n    label_words: {json.dumps(words)}\n",
        encoding="utf-8",
    )
    return path


# ---- one run (a child process) -------------------------------------------------------------------------
def _recipe(seed: int):
    from lmbff.config import TrainingArguments
    from lmbff.defaults import PRESETS

    preset = PRESETS["fast"]
    return TrainingArguments(
        max_steps=preset.max_steps, eval_every=preset.eval_every, seed=seed,
        learning_rate=preset.prototype_learning_rates["lora"], min_epochs=preset.prototype_min_epochs,
    )  # fmt: skip


def _fresh(spec: dict, train: str) -> dict:
    """A fresh prototype run on the phase's task (joint, or phase 1)."""
    from lmbff.experiment import ExperimentConfig, run_experiment

    data = Path(spec["data"])
    config = ExperimentConfig(
        task=spec["task_file"], data_dir=str(data), out=spec["out"], method="prompt", backend="lora",
        training=_recipe(spec["seed"]), precision="auto", verbalizer="prototype", template=spec["template"],
        train_split=str(data / f"{train}.tsv"), dev_split=str(data / "dev.tsv"),
        test_split=str(data / "test.tsv"),
    )  # fmt: skip
    return run_experiment(config, progress=False)


def _accuracy_split(spec: dict, out: Path) -> dict:
    """Accuracy on the test rows of the old classes and of the phase's new classes."""
    records = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    new = set(spec["new_labels"])
    result = {}
    for name, rows in (("old", [r for r in records if r["label"] not in new]),
                       ("new", [r for r in records if r["label"] in new])):  # fmt: skip
        result[f"{name}_classes_accuracy"] = (
            sum(r["prediction"] == r["label"] for r in rows) / len(rows) if rows else None
        )
    return result


def _naive(spec: dict) -> dict:
    """Sequential tuning: the previous state grown by the new classes, tuned on their rows only."""
    import tempfile

    from lmbff.config import IncrementalConfig
    from lmbff.data import load_split
    from lmbff.evaluate import score_examples
    from lmbff.incremental import add_classes
    from lmbff.memory import PeakMemory
    from lmbff.results import RunResult, prediction_records
    from lmbff.state import ScoringSpec, TrainedState, save_state
    from lmbff.train import Trainer
    from prompts.library import load_task_file

    memory, started = PeakMemory(), time.perf_counter()
    data = Path(spec["data"])
    previous = TrainedState.load(spec["previous"])
    loaded = previous.load_base()
    task = load_task_file(spec["task_file"]).task
    read = {name: load_split(data, name, task).examples for name in ("new", "dev", "test")}
    # the grown scoring and the new prototype rows' start (one step: the naive run trains them anyway)
    grown = add_classes(previous, loaded, spec["new_labels"], read["new"], [],
                        config=IncrementalConfig(steps=1, eval_every=0, memory=False))  # fmt: skip
    with tempfile.TemporaryDirectory() as scratch:
        save_state(Path(scratch) / "state", grown.tensors, previous.tuning, previous.experiment,
                   scoring=grown.scoring, base=previous.base, examples=grown.examples)  # fmt: skip
        start = TrainedState.load(Path(scratch) / "state")
    scorer = start.prompt_model(loaded)
    trainer = Trainer(scorer, task, start.tuning, _recipe(spec["seed"]), read["new"], read["dev"])
    import torch

    with torch.no_grad():  # every trained tensor from the previous phase (the new rows as grown)
        for name, parameter in trainer.trainable_state().items():
            parameter.copy_(start.tensors[name].to(parameter.dtype))
    result = trainer.train(progress=False)
    test_scores = scorer.predict_log_scores(read["test"])
    tested = score_examples(task, read["test"], test_scores, "naive")
    out = Path(spec["out"])
    save_state(out / "state", trainer.trainable_state(), trainer.saved_tuning, previous.experiment,
               scoring=ScoringSpec.of(scorer, task), base=previous.base, examples=grown.examples)  # fmt: skip
    run = RunResult(task=task.name, method="naive", backend="lora", model=loaded.name,
                    template=spec["template"], seed=spec["seed"], metric="accuracy", test=tested.metrics,
                    details={"best_step": result.best_step, "seconds": time.perf_counter() - started,
                             "peak_memory_mb": memory.peak_mb()})  # fmt: skip
    run.write(
        out, markdown="", records=prediction_records(task, read["test"], test_scores, tested.predictions)
    )
    return run.to_dict()


def run_child(spec: dict) -> dict:
    method, out = spec["method"], Path(spec["out"])
    started = time.perf_counter()
    if spec["phase"] == 0 or method == "joint":
        metrics = _fresh(spec, "train")
    elif method == "naive":
        metrics = _naive(spec)
    else:
        from lmbff.config import IncrementalConfig
        from lmbff.incremental import run_new_classes

        data = Path(spec["data"])
        metrics = run_new_classes(
            spec["previous"], spec["new_labels"], out, data_dir=str(data), train_split=str(data / "new.tsv"),
            dev_split=str(data / "dev.tsv"), test_split=str(data / "test.tsv"), label_words=spec["new_words"],
            config=IncrementalConfig(memory=method == "prototypes"), progress=False,
        )  # fmt: skip
    return {
        "accuracy": metrics["test"]["accuracy"],
        **_accuracy_split(spec, out),
        "seconds": time.perf_counter() - started,
        "peak_memory_mb": metrics.get("peak_memory_mb"),
    }


# ---- why the frozen prototypes lose old classes ------------------------------------------------------------
def diagnose(task: str, seed: int, work: Path) -> dict:
    """On the phase-2 data of one seed, with the phase-1 state's slot features: the test accuracy (all,
    old classes, new classes) of the new prototypes at their start (each new class's mean feature),
    of nearest-class-mean over every class (old classes by their example memory's mean), and of the
    trained new prototypes with the memory; and how near old test rows are to their own trained
    prototype, to their memory mean and to the nearest new-class mean (cosine after centring)."""
    import torch
    from torch.nn.functional import normalize

    from lmbff.config import IncrementalConfig
    from lmbff.data import load_split
    from lmbff.incremental import train_new_prototypes
    from lmbff.prototypes import bounded_scale, centred_cosine, class_means
    from lmbff.state import TrainedState
    from prompts.library import load_task_file

    data = work / task / str(seed) / "data-phase1"
    state = TrainedState.load(work / task / str(seed) / "phase1" / "phase1" / "state")
    loaded = state.load_base()
    scorer = state.prompt_model(loaded)
    grown = load_task_file(phase_task(task, 1, work)).task
    rows = {name: load_split(data, name, grown).examples for name in ("new", "test")}
    attached = state.attach(scorer)
    features = {name: scorer.slot_features(examples).float() for name, examples in rows.items()}
    attached.detach()
    gold = {name: torch.tensor([grown.labels.index(e.label) for e in rows[name]]) for name in rows}
    old_rows = state.tensors["lmbff_prototypes.prototypes"].float()
    center = state.tensors["lmbff_prototypes.center"].float()
    scale = float(bounded_scale(state.tensors["lmbff_prototypes.log_scale"].float()))
    n_old = len(old_rows)

    def means(x, y, classes):
        return torch.stack(list(class_means(x, center, y, classes).values()))

    new_means = means(features["new"], gold["new"], sorted(set(gold["new"].tolist())))
    memory_means = means(state.examples["features"].float(), state.examples["labels"], range(n_old))
    test, y = normalize(features["test"] - center, dim=-1), gold["test"]

    def accuracy(prototypes):
        right = (centred_cosine(features["test"], center, prototypes).argmax(1) == y).float()
        return {
            "all": float(right.mean()),
            "old": float(right[y < n_old].mean()),
            "new": float(right[y >= n_old].mean()),
        }

    trained, *_ = train_new_prototypes(
        old_rows, center, scale, features["new"], gold["new"], state.examples, IncrementalConfig(eval_every=0)
    )
    old = y < n_old
    own = y[old]
    picked = torch.arange(int(old.sum()))
    to_prototype = (test[old] @ normalize(old_rows, dim=-1).T)[picked, own]
    to_memory = (test[old] @ memory_means.T)[picked, own]
    to_new = (test[old] @ new_means.T).max(1).values
    return {
        "task": task,
        "seed": seed,
        "start (new class means)": accuracy(torch.cat([old_rows, new_means])),
        "nearest class mean (memory means for the old classes)": accuracy(
            torch.cat([memory_means, new_means])
        ),
        "trained with the memory (100 steps)": accuracy(torch.cat([old_rows, trained])),
        "old test rows: cosine to their own trained prototype": float(to_prototype.mean()),
        "old test rows: cosine to their class's memory mean": float(to_memory.mean()),
        "old test rows: cosine to the nearest new-class mean": float(to_new.mean()),
    }


def bounds(task: str, seed: int, work: Path) -> dict:
    """What the phase-1 state's frozen features allow at the last phase: the test (and dev) accuracy of
    scorings that the method could use instead, on the same features and training view (the example
    memory for the phase-1 classes, every row of the later classes):

    - ``nearest class mean``: each class by its rows' mean (cosine after centring), with the phase-1
      center, and re-centred on the mean of the class means;
    - ``every prototype retrained``: all prototypes trained (100 steps, the earliest best on dev), the
      old ones too: what keeping the old prototypes frozen costs;
    - ``logistic regression``: scikit-learn's, on every seen class's rows: a linear bound on the features.
    """
    import torch
    from sklearn.linear_model import LogisticRegression
    from torch.nn.functional import cross_entropy, normalize

    from lmbff.data import load_split
    from lmbff.prototypes import bounded_scale, centred_cosine, class_means
    from lmbff.state import TrainedState
    from prompts.library import load_task_file

    last = len(TASKS[task]["phases"]) - 1
    data = work / task / str(seed) / f"data-phase{last}"
    state = TrainedState.load(work / task / str(seed) / "phase1" / "phase1" / "state")
    loaded = state.load_base()
    scorer = state.prompt_model(loaded)
    grown = load_task_file(phase_task(task, last, work)).task
    rows = {name: load_split(data, name, grown).examples for name in ("train", "dev", "test")}
    gold = {name: torch.tensor([grown.labels.index(e.label) for e in rows[name]]) for name in rows}
    attached = state.attach(scorer)
    features = {name: scorer.slot_features(examples).float() for name, examples in rows.items()}
    attached.detach()
    old_rows = state.tensors["lmbff_prototypes.prototypes"].float()
    center = state.tensors["lmbff_prototypes.center"].float()
    scale = float(bounded_scale(state.tensors["lmbff_prototypes.log_scale"].float()))
    classes = range(len(grown.labels))
    later = gold["train"] >= len(old_rows)
    x = torch.cat([state.examples["features"].float(), features["train"][later]])
    y = torch.cat([state.examples["labels"].long(), gold["train"][later]])
    recentred = torch.stack([x[y == c].mean(0) for c in classes]).mean(0)

    def scored(predict) -> dict:
        return {
            name: float((predict(features[name]) == gold[name]).float().mean()) for name in ("dev", "test")
        }

    def nearest_mean(at):
        means = torch.stack(list(class_means(x, at, y, classes).values()))
        return scored(lambda f: centred_cosine(f, at, means).argmax(1))

    rows_trained = torch.nn.Parameter(torch.stack(list(class_means(x, recentred, y, classes).values())))
    optimizer = torch.optim.AdamW([rows_trained], lr=1e-2, weight_decay=0.0)
    best, best_dev = rows_trained.detach().clone(), -1.0
    for step in range(1, 101):
        loss = cross_entropy(scale * centred_cosine(x, recentred, rows_trained), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 5 == 0:
            with torch.no_grad():
                dev = scored(lambda f: centred_cosine(f, recentred, rows_trained).argmax(1))["dev"]
            if dev > best_dev:
                best, best_dev = rows_trained.detach().clone(), dev
    unit = {name: normalize(f - recentred, dim=-1) for name, f in features.items()}
    linear = LogisticRegression(max_iter=2000).fit(unit["train"].numpy(), gold["train"].numpy())
    return {
        "task": task,
        "seed": seed,
        "nearest class mean (phase-1 center)": nearest_mean(center),
        "nearest class mean (re-centred)": nearest_mean(recentred),
        "every prototype retrained (old ones move)": scored(
            lambda f: centred_cosine(f, recentred, best).argmax(1)
        ),
        "logistic regression on every class's rows": {
            name: float((linear.predict(unit[name].numpy()) == gold[name].numpy()).mean())
            for name in ("dev", "test")
        },
    }


# ---- run and report -------------------------------------------------------------------------------------
def run(args) -> None:
    from prompts.library import load_task_file

    spec_task = TASKS[args.task]
    prompt = load_task_file(spec_task["file"]).prompt(spec_task["template"])
    methods = [m for m in args.methods.split(",") if m]
    for seed in args.seeds:
        for phase in range(len(spec_task["phases"])):
            data = phase_data(args.task, seed, phase, args.work, args.test_sample)
            task_file = phase_task(args.task, phase, args.work)
            for method in ["phase1"] if phase == 0 else methods:
                target = args.out / args.task / str(seed) / f"{method}-phase{phase + 1}.json"
                if target.exists():
                    continue
                state_of = method if method != "joint" else "joint"
                previous_method = "phase1" if phase == 1 else method
                spec = {
                    "task": args.task, "seed": seed, "phase": phase, "method": method, "data": str(data),
                    "task_file": str(task_file), "template": spec_task["template"],
                    "out": str(args.work / args.task / str(seed) / state_of / f"phase{phase + 1}"),
                    "previous": str(
                        args.work / args.task / str(seed) / previous_method / f"phase{phase}" / "state"
                    ),
                    "new_labels": spec_task["phases"][phase],
                    "new_words": [prompt.label_words[label][0] for label in spec_task["phases"][phase]],
                }  # fmt: skip
                if Path(spec["out"]).exists():  # a run that died half-way: start it again
                    import shutil

                    shutil.rmtree(spec["out"])
                print(f"{args.task} seed {seed} phase {phase + 1} {method} ...", flush=True)
                result = run_in_child(__file__, spec, method)
                result.update(task=args.task, seed=seed, phase=phase + 1, method=method,
                              seen=sum(len(p) for p in spec_task["phases"][: phase + 1]),
                              test_sample=args.test_sample, command=" ".join(sys.argv))  # fmt: skip
                save_result(target, result)
                old, new = result.get("old_classes_accuracy"), result.get("new_classes_accuracy")
                print(
                    f"  accuracy {result['accuracy']:.4f} (old {old}, new {new}), {result['seconds']:.0f} s"
                )
    report(args.out)


def report(out: Path) -> None:
    import numpy as np

    rows: dict[tuple, list] = {}
    for path in sorted(out.glob("*/*/*.json")):
        r = json.loads(path.read_text())
        methods = METHODS if r["method"] == "phase1" else [r["method"]]
        for method in methods:  # phase 1 is every method's first phase
            rows.setdefault((r["task"], method, r["phase"]), []).append(r)
    lines = [
        "| task | method | phase | classes seen | seeds | accuracy | old classes | new classes | s | peak MB "
        "|",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]

    def cell(runs, key):
        values = [r[key] for r in runs if r.get(key) is not None]
        return f"{100 * np.mean(values):.1f} ± {100 * np.std(values):.1f}" if values else ""

    for (task, method, phase), runs in sorted(rows.items()):
        lines.append(
            f"| {task} | {method} | {phase} | {runs[0]['seen']} | {len(runs)} | {cell(runs, 'accuracy')} | "
            f"{cell(runs, 'old_classes_accuracy')} | {cell(runs, 'new_classes_accuracy')} | "
            f"{np.mean([r['seconds'] for r in runs]):.0f} | "
            f"{np.mean([r['peak_memory_mb'] or 0 for r in runs]):.0f} |"
        )
    lines += _bounds_table(out, rows)
    (out / "report.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _bounds_table(out: Path, rows: dict) -> list[str]:
    """The ``bounds`` results beside the last phase's prototypes and joint runs, on the same seeds."""
    import numpy as np

    lines = []
    for task in sorted({path.parent.name for path in out.glob("*/bounds-*.json")}):
        found = [json.loads(path.read_text()) for path in sorted(out.glob(f"{task}/bounds-*.json"))]
        seeds = {r["seed"] for r in found}
        last = len(TASKS[task]["phases"])
        title = f"{task}, last phase, seeds {sorted(seeds)}: accuracy on the phase-1 state's frozen features"
        lines += ["", title, "", "| scoring | test | dev |", "|---|---|---|"]
        for method in ("prototypes", "joint"):
            runs = [r for r in rows.get((task, method, last), []) if r["seed"] in seeds]
            if runs:
                values = [100 * r["accuracy"] for r in runs]
                lines.append(f"| {method} (run) | {np.mean(values):.1f} ± {np.std(values):.1f} |  |")
        for name in [key for key in found[0] if key not in ("task", "seed")]:
            test = [100 * r[name]["test"] for r in found]
            dev = [100 * r[name]["dev"] for r in found]
            lines.append(f"| {name} | {np.mean(test):.1f} ± {np.std(test):.1f} | {np.mean(dev):.1f} |")
    return lines


def main(argv=None) -> None:
    from lmbff.cli.common import _seeds, non_negative_int

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run")
    r.add_argument("--task", choices=sorted(TASKS), required=True)
    r.add_argument("--seeds", type=_seeds, default=list(SEEDS))
    r.add_argument("--methods", default=",".join(METHODS))
    r.add_argument("--test-sample", type=non_negative_int, default=0)
    r.add_argument("--work", type=Path, required=True)
    r.add_argument("--out", type=Path, required=True)
    add_child_command(sub)
    p = sub.add_parser("report")
    p.add_argument("out", type=Path)
    d = sub.add_parser("diagnose", help="why old classes are lost (one seed's phase 2; after run)")
    d.add_argument("--task", choices=sorted(TASKS), required=True)
    d.add_argument("--seed", type=non_negative_int, default=13)
    d.add_argument("--work", type=Path, required=True)
    d.add_argument("--out", type=Path, required=True)
    b = sub.add_parser("bounds", help="what the frozen features allow at the last phase (after run)")
    b.add_argument("--task", choices=sorted(TASKS), required=True)
    b.add_argument("--seeds", type=_seeds, default=list(SEEDS))
    b.add_argument("--work", type=Path, required=True)
    b.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "bounds":
        for seed in args.seeds:
            target = args.out / args.task / f"bounds-{seed}.json"
            if not target.exists():
                save_result(target, bounds(args.task, seed, args.work))
            print(target.read_text(), flush=True)
        report(args.out)
    elif args.command == "diagnose":
        result = diagnose(args.task, args.seed, args.work)
        save_result(args.out / args.task / f"diagnose-{args.seed}.json", result)
        print(json.dumps(result, indent=2))
    elif args.command == "run":
        run(args)
    elif args.command == "report":
        report(args.out)
    else:
        serve_child(run_child, args.spec)


if __name__ == "__main__":
    main()
