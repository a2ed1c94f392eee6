"""The whole LM-BFF table: LM-BFF's 15 tasks, the official 16-shot splits, 5 seeds, the manual templates,
zero-shot (raw and calibrated), prompt-based tuning with a parameter-efficient backend, full
prompt-based fine-tuning on the single-sentence tasks, SetFit, and (phase ``grid``) LM-BFF's own
protocol of a learning-rate grid per task with the rate chosen on dev, in one table with the time and
peak memory of each method.

    python benchmarks/lmbff_table.py --data-root ../shared/data --run zero-shot,peft,full,setfit
    python benchmarks/lmbff_table.py --data-root ../shared/data --run grid --grid-tasks TREC
    python benchmarks/lmbff_table.py --table     # rebuild table.md / table.json / table.png

Each phase is a resumable sweep of independent run folders under ``<out>/runs`` (finished runs are
kept; an interrupted phase continues where it stopped), made by benchmarks/few_shot.py and
benchmarks/setfit_baseline.py with the budget given here. Test sets over 2,000 examples are a fixed,
seeded sample of 2,000, the same for every method (benchmarks/lmbff_tasks.py). Zero-shot scores do not
depend on the seed (no training; calibration reads no data), so zero-shot runs once, on split 16-13.
The table gives each task's metric as LM-BFF reports it (STS-B Pearson, CoLA MCC, MRPC and QQP F1,
the rest accuracy), x100, mean (std) over seeds (zero-shot: its one run); a cell with fewer seeds
says how many.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lmbff_tasks import PAIR_SLOT_LAST_TEMPLATE, SEEDS, TASKS, TEST_SAMPLE
from lr_sweep import choose_by_dev

from lmbff.cli.common import non_negative_int, positive_float, positive_int
from lmbff.files import atomic_write_json, atomic_write_text, markdown_table
from lmbff.report import MACHINE_NOT_RECORDED, backend_label, find_metrics, summarize

HERE = Path(__file__).resolve().parent
PHASES = ("zero-shot", "peft", "full", "setfit", "grid")
# LM-BFF's learning-rate grid (REFERENCES.md: {1e-5, 2e-5, 5e-5}, best on dev); batch size stays 8.
LMBFF_RATES = "1e-5/2e-5/5e-5"
GRID_METHOD = "prompt, rate chosen on dev"
# Every machine this project's benchmarks ran on had 2 cores (README, "Benchmarks"). A run from before
# runs recorded their CPU time (lmbff.machine) used at most that many cores for its wall time, so its
# CPU time is bounded by cores x wall time, and the table and the plot say where a figure is that bound.
BENCHMARK_CORES = 2


def run_cpu_seconds(timing: dict) -> tuple[float, bool]:
    """A run's CPU seconds (user + system), and whether that is the upper bound of a run that did not
    record them (BENCHMARK_CORES x its wall seconds) rather than a measurement."""
    if timing.get("cpu_seconds") is not None:
        return float(timing["cpu_seconds"]), False
    return BENCHMARK_CORES * float(timing["seconds"]), True


def phase_command(phase: str, args) -> list[str]:
    """The command a phase runs (one sweep of run folders under <out>/runs)."""
    runs = str(args.out / "runs")
    common = ["--data-root", str(args.data_root), "--test-sample", str(args.test_sample), "--out", runs]
    few_shot = [sys.executable, str(HERE / "few_shot.py"), *common, "--precision", args.precision]
    budget = ["--max-steps", str(args.max_steps), "--eval-every", str(args.eval_every)]
    seeds = ["--seeds", args.seeds]
    # Tuned pair-task runs use the slot-last template (README, "The LM-BFF table": 4.3x cheaper steps,
    # one dev pair apart after tuning); zero-shot keeps LM-BFF's own.
    pairs = [t.name for t in TASKS if not t.single_sentence]
    tuned_templates = (
        ["--templates", ",".join(f"{t}={args.tuned_pair_template}" for t in pairs)]
        if args.tuned_pair_template
        else []
    )
    if phase == "zero-shot":
        return [
            *few_shot,
            "--tasks",
            args.tasks,
            "--methods",
            "zero-shot",
            "--seeds",
            args.seeds.split(",")[0],
        ]
    if phase == "peft":
        return [*few_shot, "--tasks", args.tasks, "--methods", "prompt", "--backends", args.peft,
                "--learning-rate", str(args.peft_learning_rate), *budget, *seeds,
                *tuned_templates]  # fmt: skip
    if phase == "full":
        return [*few_shot, "--tasks", args.full_tasks, "--methods", "prompt", "--backends", args.full,
                "--learning-rate", str(args.full_learning_rate), *budget, *seeds,
                *tuned_templates]  # fmt: skip
    if phase == "setfit":
        return [sys.executable, str(HERE / "setfit_baseline.py"), *common, "--tasks", args.tasks, *seeds]
    if phase == "grid":
        # lr_sweep.py in its test mode: every rate's runs pick checkpoints on dev and score test; the
        # table then keeps, per task, the rate with the best mean dev (grid_runs).
        return [sys.executable, str(HERE / "lr_sweep.py"), "--data-root", str(args.data_root),
                "--tasks", args.grid_tasks, *seeds, "--backends", args.grid_backend,
                "--rates", f"{args.grid_backend}={args.grid_rates}", *budget, "--precision", args.precision,
                "--test-split", "test", "--test-sample", str(args.test_sample), *tuned_templates,
                "--out", str(args.grid_out)]  # fmt: skip
    raise SystemExit(f"unknown phase {phase!r}; phases: {', '.join(PHASES)}")


def column_name(row: dict) -> str:
    if row["method"] in ("zero-shot", "zero-shot + calibration"):
        return row["method"]
    if row["method"] == "setfit":
        return "SetFit"
    return f"{row['method']} ({row['backend']})"


def build_table(rows: list[dict]) -> dict:
    """Cells per (task, column) and, per column, the mean minutes per run and peak memory."""
    columns = list(dict.fromkeys(column_name(r) for r in rows))
    order = {name: i for i, name in enumerate(["zero-shot", "zero-shot + calibration"])}
    columns.sort(key=lambda c: (order.get(c, 2), c == "SetFit", c))
    cells: dict[str, dict[str, dict]] = {}
    for r in rows:
        metric = r["metric"]
        cpu = [run_cpu_seconds(t) for t in r["timing_by_seed"].values()]
        cells.setdefault(r["task"], {})[column_name(r)] = {
            "metric": metric,
            "mean": 100 * r["mean"][metric],
            "std": 100 * r["std"][metric],
            "seeds": r["seeds"],
            "minutes": r["seconds_per_seed"] / 60,
            "total_minutes": r["seconds_per_seed"] * len(r["seeds"]) / 60,
            "cpu_minutes": float(np.mean([seconds for seconds, _ in cpu])) / 60,
            "cpu_total_minutes": sum(seconds for seconds, _ in cpu) / 60,
            "cpu_bounded_runs": sum(bounded for _, bounded in cpu),
            "peak_memory_mb": r["peak_memory_mb"],
            "templates": r.get("templates", []),
            "machines": r.get("machines", {}),
        }
    in_column = {c: [cells[t][c] for t in cells if c in cells[t]] for c in columns}
    cost = {
        c: {
            "minutes_per_run": float(np.mean([cell["minutes"] for cell in found])),
            "total_minutes": float(sum(cell["total_minutes"] for cell in found)),
            "cpu_minutes_per_run": float(np.mean([cell["cpu_minutes"] for cell in found])),
            "cpu_total_minutes": float(sum(cell["cpu_total_minutes"] for cell in found)),
            "cpu_bounded_runs": sum(cell["cpu_bounded_runs"] for cell in found),
            "runs": sum(len(cell["seeds"]) for cell in found),
            "peak_memory_mb": float(max(cell["peak_memory_mb"] for cell in found)),
            "tasks": len(found),
        }
        for c, found in in_column.items()
    }
    # The calibrated zero-shot column is read from the same runs as the raw one: counted once.
    counted = [c for c in columns if c != "zero-shot + calibration"]
    return {
        "columns": columns,
        "cells": cells,
        "cost": cost,
        **{key: sum(cost[c][key] for c in counted) for key in ("total_minutes", "cpu_total_minutes")},
        "cpu_bounded_runs": sum(cost[c]["cpu_bounded_runs"] for c in counted),
        "runs": sum(cost[c]["runs"] for c in counted),
    }


def cpu_text(minutes: float, bounded: int, runs: int) -> str:
    """CPU-minutes as the table prints them: "≤" and how many runs are bounded where any is."""
    return f"{minutes:.1f}" if not bounded else f"≤ {minutes:.1f} ({bounded} of {runs} runs bounded)"


def table_markdown(table: dict) -> str:
    columns, cells = table["columns"], table["cells"]

    def cell(task: str, column: str) -> str:
        c = cells.get(task, {}).get(column)
        if c is None:
            return "n/a" if column == "SetFit" and not _single(task) else ""
        expected = 1 if column.startswith("zero-shot") else len(SEEDS)
        text = f"{c['mean']:.1f}" if expected == 1 else f"{c['mean']:.1f} ({c['std']:.1f})"
        return text if len(c["seeds"]) >= expected else f"{text}, {len(c['seeds'])} of {expected} seeds"

    metric_of = {t.name: t.metric for t in TASKS}
    scores = markdown_table(
        ["task (metric)", *columns],
        [[f"{t} ({metric_of.get(t, '')})", *(cell(t, c) for c in columns)] for t in _ordered(cells)],
    )
    cost = markdown_table(
        [
            "method",
            "minutes per run (mean over tasks)",
            "CPU-minutes per run (mean over tasks)",
            "minutes in all",
            "peak MB (max)",
            "tasks",
        ],
        [
            [
                c,
                f"{table['cost'][c]['minutes_per_run']:.1f}",
                cpu_text(
                    table["cost"][c]["cpu_minutes_per_run"],
                    table["cost"][c]["cpu_bounded_runs"],
                    table["cost"][c]["runs"],
                ),
                f"{table['cost'][c]['total_minutes']:.0f}",
                f"{table['cost'][c]['peak_memory_mb']:.0f}",
                str(table["cost"][c]["tasks"]),
            ]
            for c in columns
        ],
    )
    hours = table.get("total_minutes", 0.0) / 60
    bounded, runs = table.get("cpu_bounded_runs", 0), table.get("runs", 0)
    total = (
        f"Wall time of every run in the table, summed: {hours:.1f} h; CPU time: "
        + ("" if not bounded else "at most ")
        + f"{table.get('cpu_total_minutes', 0.0) / 60:.1f} h "
        "(the calibrated zero-shot column shares the raw column's runs)."
        + (
            ""
            if not bounded
            else f" CPU time is user + system time as {runs - bounded} of the {runs} runs recorded it; "
            f"the other {bounded}, from before runs recorded it, count as their {BENCHMARK_CORES} cores x "
            "their wall time, an upper bound (marked ≤)."
        )
    )
    notes = template_notes(table)
    machines = machine_note(table)
    return f"{scores}\n\n{cost}\n\n{total} {machines}\n" + (f"\n{notes}\n" if notes else "")


def machine_note(table: dict) -> str:
    """How many runs ran on which CPU: minutes from different machines do not compare."""
    runs: Counter = Counter()
    for task_cells in table["cells"].values():
        for column, c in task_cells.items():
            if column != "zero-shot + calibration":  # the raw column's runs
                runs.update(c.get("machines", {}))
    if not runs:
        return ""
    parts = [f"{cpu}: {n} run{'s' if n > 1 else ''}" for cpu, n in sorted(runs.items())]
    return (
        f'Machines (CPU as torch names it; "{MACHINE_NOT_RECORDED}": runs from before run metrics '
        f"named it): {'; '.join(parts)}."
    )


def template_notes(table: dict) -> str:
    """Which cells used a template other than the task's manual (LM-BFF) one, so that a column that
    mixes templates says so."""
    default = {t.name: t.causal_template or "lmbff" for t in TASKS}
    lines = []
    for task in _ordered(table["cells"]):
        for column, c in table["cells"][task].items():
            other = [name for name in c.get("templates", []) if name != "lmbff"]
            if other and column != "zero-shot + calibration":  # (the raw column's runs, named once)
                why = "" if other != [default.get(task)] else " (the task's causal-LM default)"
                lines.append(f"- {task}, {column}: template {', '.join(other)}{why}")
    return "Templates other than LM-BFF's manual one:\n\n" + "\n".join(lines) if lines else ""


def _single(task: str) -> bool:
    return next((t.single_sentence for t in TASKS if t.name == task), True)


def _ordered(cells: dict) -> list[str]:
    names = [t.name for t in TASKS]
    return sorted(cells, key=lambda t: names.index(t) if t in names else len(names))


def plot_points(table: dict) -> tuple[list[str], dict[str, tuple[float, float, bool]]]:
    """(the tasks averaged, per method (CPU-minutes per run, mean score, whether the CPU-minutes are partly
    an upper bound: run_cpu_seconds)): the single-sentence tasks that
    every plotted method has run, so that each point averages the same tasks. A method run on no more than
    half of the table's single-sentence tasks (a comparison on two tasks, a one-task grid) is left out
    of the plot rather than shrinking every other point's average to its few tasks (plot_omitted)."""
    cells = table["cells"]
    single = [t for t in _ordered(cells) if _single(t)]
    covered = {c: sum(c in cells[t] for t in single) for c in table["columns"]}
    plotted = [c for c in table["columns"] if covered[c] and 2 * covered[c] > len(single)]
    shared = [t for t in single if all(c in cells[t] for c in plotted)]
    points = {
        c: (
            float(np.mean([cells[t][c]["cpu_minutes"] for t in shared])),
            float(np.mean([cells[t][c]["mean"] for t in shared])),
            any(cells[t][c]["cpu_bounded_runs"] for t in shared),
        )
        for c in (plotted if shared else [])
    }
    return shared, points


def plot_omitted(table: dict) -> list[str]:
    """Columns with single-sentence results that :func:`plot_points` leaves out."""
    single = [t for t in table["cells"] if _single(t)]
    _, points = plot_points(table)
    return [c for c in table["columns"] if c not in points and any(c in table["cells"][t] for t in single)]


def plot(table: dict, path: Path) -> Path:
    """Score against CPU-minutes per run, one point per method (:func:`plot_points`); a hollow point's
    CPU-minutes are partly an upper bound."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shared, points = plot_points(table)
    fig, ax = plt.subplots(figsize=(6, 4))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (column, (minutes, score, bounded)) in enumerate(points.items()):
        color = colors[i % len(colors)]
        ax.scatter(minutes, score, facecolors="none" if bounded else color, edgecolors=color)
        ax.annotate(f"{column} (≤)" if bounded else column, (minutes, score), fontsize=7)
    ax.set_xlabel(f"CPU-minutes per run (hollow, ≤: partly bounded by {BENCHMARK_CORES} cores x wall time)")
    ax.set_ylabel("mean test score x100")
    ax.set_title(f"LM-BFF tasks: score against CPU time\n(mean over {', '.join(shared) or 'no shared task'})",
                 fontsize=9)  # fmt: skip
    omitted = plot_omitted(table)
    if omitted:
        lines = textwrap.wrap(f"not plotted (too few tasks): {'; '.join(omitted)}", 150)
        fig.text(0.01, 0.01, "\n".join(lines), fontsize=6)
    fig.tight_layout(rect=(0, 0.03 * (len(lines) + 1) if omitted else 0, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def column_recipes(runs: list[dict]) -> dict[str, list[str]]:
    """Per column, the distinct recipes of its runs (learning rate, steps, precision), each read from the
    run's own config.json and metrics.json: a table rebuilt by a command given another budget states
    what its runs used, not what that command was given."""
    recipes: dict[str, set[str]] = {}
    for run in runs:
        column = column_name({"method": run["method"], "backend": backend_label(run)})
        config_file = Path(run["_path"]) / "config.json"
        training = json.loads(config_file.read_text()).get("training", {}) if config_file.exists() else {}
        parts = [run.get("precision", "precision not recorded")]
        if "setfit" in run:  # setfit_baseline.py records its recipe as one string
            parts = [f"SetFit {run['setfit']}", *parts]
        elif training and run["method"] != "zero-shot":
            # The grid column's rate differs by task by design (its note lists each choice): not "mixed".
            rate = f"{training['learning_rate']:g}"
            rate = "per task, chosen on dev" if run["method"] == GRID_METHOD else rate
            parts = [f"learning rate {rate}", f"{training['max_steps']} steps", *parts]
        recipes.setdefault(column, set()).add(", ".join(parts))
    return {column: sorted(found) for column, found in recipes.items()}


def recipes_note(recipes: dict[str, list[str]]) -> str:
    lines = [
        f"- {column}: {'; '.join(found)}"
        + (" (mixed: the column averages different recipes)" if len(found) > 1 else "")
        for column, found in recipes.items()
    ]
    return "What each column's runs used (from their config.json):\n\n" + "\n".join(lines) if lines else ""


def grid_runs(grid_out: Path) -> tuple[list[dict], list[dict]]:
    """The runs of each task's chosen rate in the grid phase (lr_sweep.choose_by_dev: best mean dev over
    the seeds), relabelled as a method of their own so that they form one column, and the choices. A
    task whose grid is still incomplete has no cell yet."""
    if not grid_out.is_dir():
        return [], []
    choices = choose_by_dev(grid_out)
    runs = []
    for choice in choices:
        rate = next((r for r in choice["rates"] if r["learning_rate"] == choice["chosen"]), None)
        for run in find_metrics(rate["runs"]) if rate else []:
            runs.append({**run, "method": GRID_METHOD})
    return runs, choices


def grid_note(choices: list[dict]) -> str:
    lines = []
    for c in choices:
        means = ", ".join(
            f"{r['learning_rate']}: {100 * r['mean_dev']:.1f}"
            + ("" if r["complete"] else f" ({len(r['seeds'])} of {len(c['seeds'])} seeds)")
            for r in c["rates"]
        )
        picked = f"chose {c['chosen']}" if c["chosen"] else "no rate complete yet"
        lines.append(f"- {c['task']}, {c['backend']}: mean dev per rate {means}; {picked}")
    return (
        f'"{GRID_METHOD}" (LM-BFF\'s protocol): per task, the learning rate with the best mean dev score '
        "over the seeds; test was read for the chosen rate only:\n\n" + "\n".join(lines)
    )


def plot_note(table: dict) -> str:
    shared, _ = plot_points(table)
    omitted = plot_omitted(table)
    text = (
        f"table.png plots each method's mean over {', '.join(shared) or 'no shared task'} against its "
        "CPU-minutes per run (a hollow point's are partly the upper bound above)"
    )
    if not omitted:
        return text + "."
    return text + f"; not plotted (run on too few of those tasks): {'; '.join(omitted)}."


def write_table(out: Path, budget: dict, grid_out: Path | None = None) -> str:
    runs = find_metrics([out / "runs"]) if (out / "runs").is_dir() else []
    chosen, choices = grid_runs(grid_out) if grid_out else ([], [])
    runs += chosen
    rows = summarize(runs)
    table = build_table(rows)
    recipes = column_recipes(runs)
    table["recipes"] = {c: recipes[c] for c in table["columns"] if c in recipes}
    table["grid"] = choices
    text = (
        "# The LM-BFF table\n\nK=16 (LM-BFF's official splits), test metric x100, mean (std) over seeds. "
        f"Budget of the command that wrote this table: {json.dumps(budget)}.\n\n"
        + table_markdown(table)
        + (f"\n{recipes_note(table['recipes'])}\n" if table["recipes"] else "")
        + (f"\n{grid_note(choices)}\n" if choices else "")
        + f"\n{plot_note(table)}\n"
    )
    atomic_write_text(out / "table.md", text)
    atomic_write_json(out / "table.json", {"budget": budget, **table})
    if rows:
        plot(table, out / "table.png")
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/lmbff_table"))
    parser.add_argument("--run", default="", help=f"comma-separated phases: {', '.join(PHASES)}")
    parser.add_argument("--table", action="store_true", help="rebuild the table from finished runs only")
    parser.add_argument("--tasks", default="all", help="names, all, single or pairs")
    parser.add_argument("--full-tasks", default="single", help="tasks of the full fine-tuning phase")
    parser.add_argument("--seeds", default=",".join(map(str, SEEDS)))
    parser.add_argument("--test-sample", type=non_negative_int, default=TEST_SAMPLE)
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "auto"])
    parser.add_argument("--max-steps", type=positive_int, default=100)
    parser.add_argument("--eval-every", type=positive_int, default=25)
    parser.add_argument("--peft", default="lora", help="the parameter-efficient backend")
    parser.add_argument(
        "--peft-learning-rate",
        type=positive_float,
        default=3e-3,
        help="chosen on dev: benchmarks/results/lr_sweep",
    )
    parser.add_argument("--full", default="full", help="full, or full-lean (vocabulary matrices frozen)")
    parser.add_argument("--full-learning-rate", type=positive_float, default=1e-5, help="LM-BFF's 1e-5")
    parser.add_argument("--grid-tasks", default="TREC", help="tasks of the grid phase")
    parser.add_argument("--grid-backend", default="full-lean", help="the backend the grid phase tunes")
    parser.add_argument("--grid-rates", default=LMBFF_RATES, help="r1/r2/...: LM-BFF's grid by default")
    parser.add_argument(
        "--grid-out",
        type=Path,
        default=Path("benchmarks/results/lmbff_grid"),
        help="the grid phase's runs, one folder per rate (lr_sweep.py)",
    )
    parser.add_argument(
        "--tuned-pair-template",
        default=PAIR_SLOT_LAST_TEMPLATE,
        help="the pair tasks' template in the peft and full phases ('' for LM-BFF's own)",
    )
    return parser


def check_tuned_pair_template(name: str) -> str | None:
    """Why ``name`` cannot be every pair task's template (None when it can): found before any phase
    runs, not when the first tuned pair run starts after hours of earlier phases."""
    from prompts.errors import LmbffError
    from prompts.library import load_task

    for task in (t.name for t in TASKS if not t.single_sentence):
        try:
            load_task(task).prompt(name)
        except LmbffError as error:
            return f"--tuned-pair-template: {error}"
    return None


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    problem = args.tuned_pair_template and check_tuned_pair_template(args.tuned_pair_template)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    budget = {
        "max_steps": args.max_steps,
        "eval_every": args.eval_every,
        "batch_size": 8,
        "peft": f"{args.peft} at {args.peft_learning_rate:g}",
        "full": f"{args.full} at {args.full_learning_rate:g}",
        "precision": args.precision,
        "test_sample": args.test_sample,
        "tuned_pair_template": args.tuned_pair_template or "lmbff",
        "grid": f"{args.grid_backend} at {args.grid_rates}, chosen on dev, on {args.grid_tasks}",
    }
    phases = [p for p in args.run.split(",") if p]
    if phases and not args.data_root.is_dir():
        print(f"no benchmark data at {args.data_root}; pass --data-root", file=sys.stderr)
        return 2
    for phase in phases:
        command = phase_command(phase, args)
        print("$", " ".join(command), flush=True)
        code = subprocess.run(command).returncode
        if code:
            return code
        write_table(args.out, budget, args.grid_out)  # after every phase: a partial table is always there
    print(write_table(args.out, budget, args.grid_out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
