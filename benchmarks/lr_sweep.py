"""Learning rates for a short budget, chosen on dev sets only (test is never read).

    python benchmarks/lr_sweep.py --data-root ../shared/data --tasks SST-2,TREC --seeds 13,21 \
        --backends ln,lora,full --max-steps 100 --out benchmarks/results/lr_sweep

For each backend and each of its candidate rates (``--rates backend=r1/r2/...``; default: the backend's
own rate, a third of it and three times it), benchmarks/few_shot.py trains prompt-based tuning on each
task and seed with ``--test-split dev``: the best checkpoint is picked on dev and the "test" pass scores
dev again, so no test example is seen. sweep.md / sweep.json give the mean dev score per (backend,
rate) over tasks and seeds, and the rate each backend would get. Resumable: finished runs are kept.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from lmbff.files import atomic_write_json, atomic_write_text, markdown_table
from lmbff.report import backend_label, find_metrics
from lmbff.tuning import make_config

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lmbff_tasks import add_test_sample_argument, resolve_backend  # the benchmarks' shared module

from lmbff.cli.common import positive_int

HERE = Path(__file__).resolve().parent


def candidate_rates(backend: str, given: dict[str, list[float]]) -> list[float]:
    if backend in given:
        return given[backend]
    name, options = resolve_backend(backend)
    own = make_config(name, options).learning_rate
    return [own / 3, own, own * 3]


def parse_rates(text: str) -> dict[str, list[float]]:
    """``ln=3e-3/1e-2,lora=1e-3`` -> {"ln": [0.003, 0.01], "lora": [0.001]}."""
    rates = {}
    for part in filter(None, text.split(",")):
        backend, values = part.split("=", 1)
        rates[backend] = [float(v) for v in values.split("/")]
    return rates


def summarize_sweep(out: Path) -> list[dict]:
    """Mean dev score per (backend, rate) over every finished run under ``out``."""
    scores: dict[tuple, list[float]] = defaultdict(list)
    for run in find_metrics([out]):
        rate = Path(run["_path"]).parts[-4].removeprefix("lr-")
        # backend_label: lean full records backend "full" with an option, and must not average with it
        scores[(backend_label(run), rate)].append(run["test"][run["metric"]])
    return [
        {"backend": b, "learning_rate": r, "mean_dev": float(np.mean(v)), "runs": len(v)}
        for (b, r), v in sorted(scores.items())
    ]


def choose_by_dev(out: Path) -> list[dict]:
    """Per (task, backend label) under ``out``: each rate's mean dev score over its seeds (the dev score
    of the checkpoint each run kept), and the rate with the best, as LM-BFF chooses its grid. A rate is a
    candidate only once it has every seed the group has run (a partly run rate is listed, not chosen, so
    that a choice never compares means over different splits); equal means go to the lowest rate, the
    first of LM-BFF's grid. ``chosen`` is None while no rate is complete. Test scores are carried along
    for the report of the chosen rate only: they never enter the choice."""
    groups: dict[tuple, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for run in find_metrics([out]):
        rate = Path(run["_path"]).parts[-4].removeprefix("lr-")
        groups[(run["task"], backend_label(run))][rate].append(run)
    choices = []
    for (task, backend), by_rate in sorted(groups.items()):
        seeds = sorted({run["seed"] for runs in by_rate.values() for run in runs})
        rates = []
        for rate, runs in sorted(by_rate.items(), key=lambda item: float(item[0])):
            metric = runs[0]["metric"]
            rates.append(
                {
                    "learning_rate": rate,
                    "metric": metric,
                    "seeds": sorted(run["seed"] for run in runs),
                    "mean_dev": float(np.mean([run["dev"][metric] for run in runs])),
                    "complete": sorted(run["seed"] for run in runs) == seeds,
                    "runs": [run["_path"] for run in runs],
                }
            )
        complete = [r for r in rates if r["complete"]]
        best = max(complete, key=lambda r: r["mean_dev"], default=None)  # max keeps the first of equals
        choices.append(
            {
                "task": task,
                "backend": backend,
                "seeds": seeds,
                "rates": rates,
                "chosen": best["learning_rate"] if best else None,
            }
        )
    return choices


def grid_markdown(choices: list[dict]) -> str:
    """One row per (task, backend, rate): mean dev, and the test score of the chosen rate only."""
    rows = []
    for choice in choices:
        for rate in choice["rates"]:
            chosen = rate["learning_rate"] == choice["chosen"]
            test = ""
            if chosen:
                values = [json.loads((Path(p) / "metrics.json").read_text())["test"][rate["metric"]]
                          for p in rate["runs"]]  # fmt: skip
                test = f"{100 * np.mean(values):.1f} ({100 * np.std(values):.1f})"
            rows.append(
                [
                    choice["task"],
                    choice["backend"],
                    rate["learning_rate"],
                    f"{100 * rate['mean_dev']:.1f}",
                    ",".join(map(str, rate["seeds"])) + ("" if rate["complete"] else " (incomplete)"),
                    "yes" if chosen else "",
                    test,
                ]
            )
    return markdown_table(
        ["task", "backend", "learning rate", "mean dev (x100)", "seeds", "chosen", "test of the chosen rate"],
        rows,
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    parser.add_argument("--tasks", default="SST-2,TREC")
    parser.add_argument("--seeds", default="13,21")
    parser.add_argument("--backends", default="ln,lora,full")
    parser.add_argument("--rates", default="", help="backend=r1/r2,... (default: own/3, own, own*3)")
    parser.add_argument("--max-steps", type=positive_int, default=100)
    parser.add_argument("--eval-every", type=positive_int, default=25)
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "auto"])
    parser.add_argument(
        "--test-split",
        default="dev",
        choices=["dev", "test"],
        help="dev: score dev again (a sweep); test: LM-BFF's grid, rate chosen per task on dev",
    )
    add_test_sample_argument(parser)
    parser.add_argument("--templates", default="", help="TASK=TEMPLATE,... (few_shot.py --templates)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/lr_sweep"))
    args = parser.parse_args(argv)
    given = parse_rates(args.rates)
    for backend in args.backends.split(","):
        for rate in candidate_rates(backend, given):
            command = [
                sys.executable,
                str(HERE / "few_shot.py"),
                "--data-root",
                str(args.data_root),
                "--tasks",
                args.tasks,
                "--seeds",
                args.seeds,
                "--methods",
                "prompt",
                "--backends",
                backend,
                "--learning-rate",
                str(rate),
                "--max-steps",
                str(args.max_steps),
                "--eval-every",
                str(args.eval_every),
                "--precision",
                args.precision,
                "--test-split",
                args.test_split,
                "--test-sample",
                str(args.test_sample),
                *(["--templates", args.templates] if args.templates else []),
                "--out",
                str(args.out / f"lr-{rate:g}"),
            ]
            code = subprocess.run(command).returncode
            if code:
                return code
    if args.test_split == "test":
        return write_grid(args.out, args.max_steps)
    rows = summarize_sweep(args.out)
    best = {}
    for row in rows:
        if row["backend"] not in best or row["mean_dev"] > best[row["backend"]]["mean_dev"]:
            best[row["backend"]] = row
    table = markdown_table(
        ["backend", "learning rate", "mean dev (x100)", "runs", "chosen"],
        [
            [
                r["backend"],
                r["learning_rate"],
                f"{100 * r['mean_dev']:.1f}",
                r["runs"],
                "yes" if best[r["backend"]] is r else "",
            ]
            for r in rows
        ],
    )
    atomic_write_json(args.out / "sweep.json", {"rows": rows, "chosen": best})
    atomic_write_text(
        args.out / "sweep.md",
        f"# Learning rates on dev ({args.tasks}, seeds {args.seeds}, {args.max_steps} steps)\n\n{table}\n",
    )
    print(table)
    return 0


def write_grid(out: Path, max_steps: int) -> int:
    choices = choose_by_dev(out)
    table = grid_markdown(choices)
    atomic_write_json(out / "grid.json", {"max_steps": max_steps, "choices": choices})
    atomic_write_text(
        out / "grid.md",
        f"# Learning rate per task, chosen on dev ({max_steps} steps; test of the chosen rate only)\n\n"
        f"{table}\n",
    )
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
