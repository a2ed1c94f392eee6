"""Merging runs: mean (std) per method and metric over seeds, as markdown, JSON and a plot.

The standard deviation is the population one (NumPy's default, ddof=0) over the seeds present.
"""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from .files import atomic_write_json, atomic_write_text, markdown_table

# The machine of a run whose metrics predate the record (lmbff.machine).
MACHINE_NOT_RECORDED = "not recorded"
METHOD_ORDER = ["zero-shot", "zero-shot + calibration", "finetune", "prompt", "prompt-demos"]


def find_metrics(paths: list[str | os.PathLike]) -> list[dict]:
    """Every finished run with labelled results under the given folders (or metrics.json files): train,
    run, zero-shot, predict and ensemble folders alike (:class:`lmbff.results.RunResult`)."""
    from .results import RunResult

    found = []
    for path in map(Path, paths):
        files = [path] if path.is_file() else sorted(path.rglob("metrics.json"))
        for file in files:
            if path.is_dir() and _ensemble_member(file.parent, path):  # counted once, as its ensemble
                continue
            result = RunResult.from_dict(json.loads(file.read_text()))
            if not result.labelled:  # predictions of unlabelled data: nothing to average
                continue
            data = result.to_dict()
            data["_path"] = str(file.parent)
            found.append(data)
    return found


def _ensemble_member(folder: Path, searched: Path) -> bool:
    """Whether a run folder is one member of a template ensemble (``<ensemble>/members/<template>``)
    found by searching the ensemble's folder or one above it: averaged with the plain runs of its method
    it would merge several templates into one row, and the ensemble's own metrics already report every
    member. Searching the members' folder itself finds them as runs."""
    from .results import ENSEMBLE_MEMBERS

    ensemble = folder.parent.parent
    config = ensemble / "config.json"
    if folder.parent.name != ENSEMBLE_MEMBERS or not config.is_file():
        return False
    searched, ensemble = searched.resolve(), ensemble.resolve()
    if searched != ensemble and searched not in ensemble.parents:
        return False
    return bool(json.loads(config.read_text()).get("template_ensemble"))


def backend_label(run: dict) -> str:
    """The backend as reports name it: with its options other than the defaults, and the precision when
    it is not fp32 (``full (embeddings=frozen)``, ``lora, bf16``), so that such runs never average with
    the plain ones. An option at its value from before its default changed is left out: ``full`` is
    every weight trained, whether the run is older than the option or pinned to it."""
    from .tuning import distinctive_options

    label = run.get("backend", "") or ""
    named = distinctive_options(run.get("backend_options")) if label != "none" else {}
    options = [
        f"{name}={value}" for backend in sorted(named) for name, value in sorted(named[backend].items())
    ]
    if options:
        label += f" ({', '.join(options)})"
    if run.get("precision", "fp32") != "fp32":
        label += f", {run['precision']}"
    return label


def summarize(runs: list[dict]) -> list[dict]:
    """One row per (task, method, backend label): mean and std of every test metric over seeds."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for run in runs:
        if run.get("verbalizer", "words") != "words":  # prototypes: a row of their own
            run = {**run, "method": f"{run['method']} ({run['verbalizer']})"}
        groups[(run["task"], run["method"], backend_label(run))].append(run)
        if "test_calibrated" in run:  # a zero-shot run reports its calibrated scores as a row of their own
            twin = {**run, "method": f"{run['method']} + calibration", "test": run["test_calibrated"]}
            groups[(run["task"], twin["method"], backend_label(run))].append(twin)
    rows = []
    for (task, method, backend), members in groups.items():
        metric_names = sorted(set.intersection(*(set(m["test"]) for m in members)))
        row = {
            "task": task,
            "method": method,
            "backend": backend,
            "metric": members[0]["metric"],
            "seeds": sorted(m["seed"] for m in members),
            "mean": {},
            "std": {},
            "seconds_per_seed": float(np.mean([m.get("seconds", 0.0) for m in members])),
            "peak_memory_mb": float(max(m.get("peak_memory_mb", 0.0) for m in members)),
            "per_seed": {m["seed"]: m["test"][m["metric"]] for m in members},
            "trainable_parameters": members[0].get("trainable_parameters", 0),
            "total_parameters": members[0].get("total_parameters", 0),
            "seconds_per_step": float(np.mean([m.get("seconds_per_step", 0.0) for m in members])),
            "state_bytes": members[0].get("state_bytes", 0),
            "templates": sorted({m["template"] for m in members if m.get("template")}),
            # runs per CPU (lmbff.machine): timings from different machines do not compare
            "machines": dict(Counter(m.get("machine", {}).get("cpu", MACHINE_NOT_RECORDED) for m in members)),
            # per seed: wall and CPU seconds (CPU None where a run predates the record: lmbff.machine)
            "timing_by_seed": {m["seed"]: _timing(m) for m in members},
        }
        for name in metric_names:
            values = np.array([m["test"][name] for m in members], dtype=float)
            row["mean"][name], row["std"][name] = float(values.mean()), float(values.std())
        rows.append(row)
    order = {m: i for i, m in enumerate(METHOD_ORDER)}
    return sorted(rows, key=lambda r: (r["task"], order.get(r["method"], 99), r["backend"]))


def _timing(run: dict) -> dict:
    return {"seconds": float(run.get("seconds", 0.0)), "cpu_seconds": run.get("cpu_seconds")}


def write_report(rows: list[dict], out: str | os.PathLike) -> list[Path]:
    """report.md (mean (std) ×100 of the task's metric, and every metric), report.json, report.png."""
    out = Path(out)
    table = markdown_table(
        ["task", "method", "backend", "metric", "mean (std)", "seeds", "s / seed", "peak MB"],
        [
            [
                r["task"],
                r["method"],
                r["backend"],
                r["metric"],
                f"{100 * r['mean'][r['metric']]:.1f} ({100 * r['std'][r['metric']]:.1f})",
                ",".join(map(str, r["seeds"])),
                f"{r['seconds_per_seed']:.0f}",
                f"{r['peak_memory_mb']:.0f}",
            ]
            for r in rows
        ],
    )
    cost = _cost_table(rows)
    details = "".join(
        f"\n### {r['task']} / {r['method']} / {r['backend']}\n\n"
        + markdown_table(["metric", "mean", "std"], [[n, r["mean"][n], r["std"][n]] for n in r["mean"]])
        for r in rows
    )
    atomic_write_text(
        out / "report.md",
        "# Results over seeds (test set; mean (std) x 100)\n\n" + table + cost + details,
    )
    atomic_write_json(out / "report.json", rows)
    written = [out / "report.md", out / "report.json"]
    if rows:
        written.append(plot_report(rows, out / "report.png"))
    return written


def _cost_table(rows: list[dict]) -> str:
    """What each trained method costs, relative to full prompt-based fine-tuning of the same task in
    the same report (ratios: the machine is noisy, the same run's reference is not)."""
    trained = [r for r in rows if r.get("trainable_parameters")]
    if not trained:
        return ""
    reference = {r["task"]: r for r in trained if r["method"] == "prompt" and r["backend"] == "full"}

    def ratio(r: dict, key: str, fmt: str) -> str:
        if not r[key]:
            return "n/a"  # runs made before this was measured
        ref = reference.get(r["task"])
        value = format(r[key], fmt)
        return f"{value} ({r[key] / ref[key]:.2f}x)" if ref and ref[key] else value

    table = markdown_table(
        [
            "task",
            "method",
            "backend",
            "trainable (% of model)",
            "state MB",
            "s / step (x full)",
            "peak MB (x full)",
        ],
        [
            [
                r["task"],
                r["method"],
                r["backend"],
                f"{r['trainable_parameters']:,} "
                f"({100 * r['trainable_parameters'] / r['total_parameters']:.3f}%)",
                f"{r['state_bytes'] / 2**20:.2f}" if r["state_bytes"] else "n/a",
                ratio(r, "seconds_per_step", ".2f"),
                ratio(r, "peak_memory_mb", ".0f"),
            ]
            for r in trained
        ],
    )
    return "\n## Cost of training (x full: relative to prompt / full of the same task)\n\n" + table


def plot_report(rows: list[dict], path: str | os.PathLike) -> Path:
    """A bar per (method, backend) and task: mean test metric x100 with the std over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = sorted({r["task"] for r in rows})
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.5 * len(tasks), 3.5), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        members = [r for r in rows if r["task"] == task]
        for x, r in enumerate(members):
            values = [100 * v for v in r["per_seed"].values()]
            ax.scatter([x] * len(values), values, alpha=0.7)
            ax.errorbar(
                [x + 0.15],
                [100 * r["mean"][r["metric"]]],
                yerr=[100 * r["std"][r["metric"]]],
                fmt="k_",
                capsize=4,
            )
        ax.set_xticks(range(len(members)), [f"{r['method']}\n{r['backend']}" for r in members], fontsize=8)
        ax.set_title(task)
        ax.set_ylabel(f"test {members[0]['metric']} (x100)")
    fig.tight_layout()
    path = Path(path)
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)
    return path


# ---- the tuning-backend cost table (benchmarks/backend_cost.py) --------------------------------
COST_COLUMNS = [
    "backend",
    "trainable (% of model)",
    "state MB (x full)",
    "s / step (x full)",
    "peak MB (x full)",
]


def prompt_accuracy(root: Path) -> dict[str, dict[str, dict]]:
    """{task: {backend: summary row}} for the prompt-based runs under the few-shot results root."""
    found: dict[str, dict[str, dict]] = {}
    for row in summarize(find_metrics([root])):
        if row["method"] == "prompt":
            found.setdefault(row["task"], {})[row["backend"]] = row
    return found


def backend_table(cost: list[dict], accuracy: dict[str, dict[str, dict]]) -> str:
    """One row per measured backend: its cost with ratios to ``full``, then per task the test accuracy
    mean (std) over seeds and its difference to ``full`` in points (a seed count when not all five)."""
    full = next((r for r in cost if r["backend"] == "full"), None)
    tasks = sorted(accuracy)

    def with_ratio(r: dict, key: str, fmt: str, scale: float = 1.0) -> str:
        text = format(r[key] * scale, fmt)
        return f"{text} ({r[key] / full[key]:.3g}x)" if full else text

    def score(task: str, backend: str) -> str:
        row = accuracy[task].get(backend)
        if row is None:
            return "n/a"
        name = row["metric"]
        text = f"{100 * row['mean'][name]:.1f} ({100 * row['std'][name]:.1f})"
        reference = accuracy[task].get("full")
        if reference is not None and backend != "full":
            text += f" [{100 * (row['mean'][name] - reference['mean'][name]):+.1f}]"
        if len(row["seeds"]) < 5:
            text += f", {len(row['seeds'])} of 5 seeds"
        return text

    # Without a full row there is nothing to compare with: the headers say so rather than promise ratios.
    columns = COST_COLUMNS if full else [c.replace(" (x full)", "") for c in COST_COLUMNS]
    versus = " [vs full]" if any("full" in accuracy[task] for task in tasks) else ""
    return markdown_table(
        [*columns, *(f"{task} accuracy{versus}" for task in tasks)],
        [
            [
                r["backend"],
                f"{r['trainable_parameters']:,} "
                f"({100 * r['trainable_parameters'] / r['total_parameters']:.3f}%)",
                with_ratio(r, "state_bytes", ".2f", 2**-20),
                with_ratio(r, "seconds_per_step", ".2f"),
                with_ratio(r, "peak_memory_mb", ".0f"),
                *(score(task, r["backend"]) for task in tasks),
            ]
            for r in cost
        ],
    )
