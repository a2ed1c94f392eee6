"""The `lmbff` command end to end, on tiny models saved to folders and on the shipped demo data."""

import json
import subprocess
import sys

import pytest

from lmbff.cli import main

from .conftest import DEMO_DATA

REVIEWS = str(DEMO_DATA / "task.yaml")


@pytest.mark.parametrize("family", ["bert_dir", "roberta_dir", "gpt_dir"])
def test_zero_shot_writes_json_markdown_and_predictions(family, request, tmp_path, capsys):
    model_dir = request.getfixturevalue(family)
    out = tmp_path / "out"
    code = main(
        [
            "zero-shot",
            "--task",
            REVIEWS,
            "--data-dir",
            str(DEMO_DATA),
            "--model",
            str(model_dir),
            "--split",
            "test",
            "--out",
            str(out),
            "--batch-size",
            "8",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "accuracy" in printed and "zero-shot + calibration" in printed
    results = json.loads((out / "results.json").read_text())
    assert results["task"] == "reviews" and results["split"] == "test"
    raw, _calibrated = results["results"]
    assert raw["num_examples"] == 108 and 0.0 <= raw["metrics"]["accuracy"] <= 1.0
    assert {row["label"] for row in raw["per_class"]} == {"negative", "positive"}
    assert abs(sum(results["content_free_probs"]) - 1) < 1e-5
    table = (out / "results.md").read_text()
    assert "| zero-shot |" in table and "Per class" in table
    predictions = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(predictions) == 108 and abs(sum(predictions[0]["scores"].values()) - 1) < 1e-5
    accuracy = sum(p["prediction"] == p["label"] for p in predictions) / 108
    assert accuracy == pytest.approx(raw["metrics"]["accuracy"])


def test_split_command(tmp_path, capsys):
    out = tmp_path / "splits"
    assert (
        main(
            [
                "split",
                "--task",
                REVIEWS,
                "--data-dir",
                str(DEMO_DATA),
                "--k",
                "4",
                "--seeds",
                "13,42",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert sorted(p.name for p in out.iterdir()) == ["4-13", "4-42"]
    assert sorted(p.name for p in (out / "4-13").iterdir()) == [
        "dev.tsv",
        "manifest.json",
        "test.tsv",
        "train.tsv",
    ]


def test_render_shows_prompts_and_truncation(bert_dir, capsys):
    assert (
        main(
            [
                "templates",
                "render",
                "--task",
                REVIEWS,
                "--n",
                "2",
                "--model",
                str(bert_dir),
                "--max-length",
                "12",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert out.count("It was {mask}.") == 2 and "truncated: text_a: -" in out and "(max 12)" in out


def test_user_errors_are_one_clear_line(tmp_path, capsys, gpt_dir):
    zero_shot = ["zero-shot", "--task", "SST-2", "--data-dir", str(tmp_path), "--model"]
    assert main([*zero_shot, str(gpt_dir)]) == 2
    assert "no 'test' split" in capsys.readouterr().out
    bad = tmp_path / "test.tsv"
    bad.write_text("text_a\tlabel\nfine\t7\n\t0\n")
    assert main([*zero_shot, str(gpt_dir)]) == 2
    assert "test.tsv:2: field 'label': unknown label '7'" in capsys.readouterr().out
    bad.write_text("text_a\tlabel\nfine\t1\n\t0\n")  # a blank text is kept, as LM-BFF keeps it, and said
    assert main([*zero_shot, str(gpt_dir), "--out", str(tmp_path / "zs")]) == 0
    assert "1 example(s) of" in capsys.readouterr().out
    assert main([*zero_shot, str(tmp_path / "none"), "--skip-bad", "--out", str(tmp_path / "zs2")]) == 2
    assert "does not exist" in capsys.readouterr().out


def test_demo_runs_end_to_end_on_a_tiny_model(gpt_dir, tmp_path, capsys):
    assert main(["demo", "--model", str(gpt_dir), "--steps", "2", "--out", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    assert "LN-tuning" in out and "per class" in out
    results = json.loads((tmp_path / "demo" / "results.json").read_text())
    assert [r["name"] for r in results["results"]] == [
        "zero-shot",
        "zero-shot + calibration",
        "LN-tuning, 16 per class (2 steps)",
    ]


def test_installed_console_script():
    result = subprocess.run(
        [sys.executable, "-m", "lmbff.cli", "--help"], capture_output=True, text=True, check=True
    )
    for command in ("zero-shot", "split", "templates", "demo"):
        assert command in result.stdout


def test_zero_shot_from_labels_and_a_data_file_without_a_yaml(bert_dir, tmp_path, capsys):
    news = tmp_path / "news.csv"
    news.write_text(
        "text,topic\n"
        '"The match ended in a draw",Sports\n'
        '"Parliament passed the budget",World\n'
        '"A late goal won the cup",Sports\n'
    )
    out = tmp_path / "zs"
    command = [
        "zero-shot", "--labels", "World,Sports", "--template", "{{ text }} Topic: {{ mask }}.",
        "--label-words", "world,sports", "--data-file", str(news), "--text-column", "text",
        "--label-column", "topic", "--model", str(bert_dir), "--out", str(out),
    ]  # fmt: skip
    assert main(command) == 0
    printed = capsys.readouterr().out
    assert "zero-shot + calibration" in printed and "['World', 'Sports']" in printed
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert [r["label"] for r in rows] == ["Sports", "World", "Sports"]
    assert all(set(r["calibrated_scores"]) == {"World", "Sports"} for r in rows)
    # Without gold labels: predictions and counts per label, no metrics.
    (tmp_path / "unlabelled.csv").write_text("text\nThe match ended in a draw\nParliament passed it\n")
    out2 = tmp_path / "zs2"
    command = [
        "zero-shot", "--labels", "World,Sports", "--template", "{{ text }} Topic: {{ mask }}.",
        "--data-file", str(tmp_path / "unlabelled.csv"), "--model", str(bert_dir), "--out", str(out2),
    ]  # fmt: skip
    assert main(command) == 0
    assert "predicted labels" in capsys.readouterr().out
    assert len((out2 / "predictions.jsonl").read_text().splitlines()) == 2
    # Mistakes are one clear line.
    assert main(["zero-shot", "--labels", "A,B", "--template", "{{ text }}", "--data-file", str(news)]) == 2
    assert "no mask slot" in capsys.readouterr().out
    assert main(["zero-shot", "--data-file", str(news)]) == 2
    assert "give --task" in capsys.readouterr().out
    bad_column = ["zero-shot", "--labels", "A,B", "--data-file", str(news), "--text-column", "body"]
    assert main([*bad_column, "--model", str(bert_dir), "--out", str(tmp_path / "never")]) == 2
    assert "news.csv:2: no column 'body' (columns: ['text', 'topic'])" in capsys.readouterr().out


def test_templates_new_writes_a_file_that_task_then_finds(tmp_path, monkeypatch, capsys):
    from prompts.library import load_task

    monkeypatch.chdir(tmp_path)
    assert main(["templates", "new", "--task", "spam", "--fields", "text_a", "--labels", "ham,spam"]) == 0
    assert "--task spam finds it" in capsys.readouterr().out
    assert load_task("spam").task.labels == ("ham", "spam")
    assert main(["templates", "lint", "templates/spam.yaml"]) == 0
    command = ["templates", "new", "--task", "news", "--from-labels", "World,Sports",
               "--template", "{{ text }} Topic: {{ mask }}."]  # fmt: skip
    assert main(command) == 0
    news = load_task("news")
    assert news.task.fields == ("text",) and news.prompt().label_words == {
        "World": ["World"],
        "Sports": ["Sports"],
    }
    assert news.prompt().template.text == "{{ text }} Topic: {{ mask }}."
    assert main(["templates", "new", "--task", "x", "--from-labels", "a,b", "--labels", "a,b"]) == 2
    # Issue 36: words derived from the names (and said), or given with --label-words.
    capsys.readouterr()
    command = ["templates", "new", "--task", "intents", "--from-labels", "card_arrival,creditLimitChange"]
    assert main(command) == 0
    assert "label words (from the label names): card_arrival: card arrival" in capsys.readouterr().out
    assert load_task("intents").prompt().label_words == {
        "card_arrival": ["card arrival"],
        "creditLimitChange": ["credit limit change"],
    }
    command = ["templates", "new", "--task", "intents2", "--from-labels", "card_arrival,card_linking"]
    assert main([*command, "--label-words", "arrival,linking"]) == 0
    assert load_task("intents2").prompt().label_words == {
        "card_arrival": ["arrival"],
        "card_linking": ["linking"],
    }
    command[3] = "intents3"
    assert main([*command, "--label-words", "arrival"]) == 2  # one word for two labels
    assert "1 label words for 2 labels" in capsys.readouterr().out


def test_train_prints_its_plan_and_presets_set_the_recipe(capsys):
    from lmbff.cli import _experiment_config, build_parser

    args = build_parser().parse_args(["run", "--task", "SST-2", "--data-dir", "d", "--out", "o"])
    fast = _experiment_config(args, "prompt", "d", "o", 13)
    assert (fast.backend, fast.training.learning_rate, fast.training.max_steps) == ("lora", 1e-3, 32)
    args = build_parser().parse_args(
        ["run", "--task", "SST-2", "--data-dir", "d", "--out", "o", "--preset", "lmbff"]
    )
    paper = _experiment_config(args, "prompt", "d", "o", 13)
    assert (paper.backend, paper.training.learning_rate, paper.training.max_steps) == ("full", 1e-5, 1000)
    assert paper.training.eval_every == 100
    args = build_parser().parse_args(
        ["train", "--task", "SST-2", "--data-dir", "d", "--out", "o", "--backend", "ln"]
    )
    ln = _experiment_config(args, "prompt", "d", "o")
    # The fast preset's short-budget rate for LN-tuning (chosen on dev), not its 1000-step default 1e-3.
    assert ln.backend == "ln" and ln.training.learning_rate == 1e-2
    base = ["train", "--task", "SST-2", "--data-dir", "d", "--out", "o"]
    args = build_parser().parse_args([*base, "--backend", "lora"])
    assert _experiment_config(args, "prompt", "d", "o").training.learning_rate == 1e-3
    # the 100-step sweep's choices (benchmarks/results/lr_sweep_more), over their long-budget defaults
    for backend, rate in (("soft-prompt", 1e-1), ("prefix", 3e-3), ("adapter", 1e-3)):
        args = build_parser().parse_args([*base, "--backend", backend])
        assert _experiment_config(args, "prompt", "d", "o").training.learning_rate == rate
    args = build_parser().parse_args([*base, "--backend", "prefix+ln"])
    assert _experiment_config(args, "prompt", "d", "o").training.learning_rate is None  # not swept: its own
    args = build_parser().parse_args([*base, "--backend", "ln", "--learning-rate", "3e-3"])
    assert _experiment_config(args, "prompt", "d", "o").training.learning_rate == 3e-3  # given wins
    args = build_parser().parse_args([*base, "--backend", "ln", "--preset", "lmbff"])
    assert _experiment_config(args, "prompt", "d", "o").training.learning_rate is None  # 1000 steps: its own
    with pytest.raises(ValueError, match="--method finetune trains"):
        _experiment_config(args, "finetune", "d", "o")


def test_the_plan_says_what_runs_and_how_long_before_anything_loads():
    """Seen: a bare `lmbff run` meant 5 seeds x 1000 steps of full fine-tuning (about 10 hours on 2
    cores) and nothing said so before it started."""
    from lmbff.cli import _experiment_config, build_parser
    from lmbff.defaults import plan_text
    from lmbff.precision import resolve_precision

    # the per-step costs were measured in fp32; bf16's depend on the hardware: no estimate then
    base = ["run", "--task", "SST-2", "--data-dir", "d", "--out", "o", "--precision", "fp32"]
    args = build_parser().parse_args([*base, "--preset", "lmbff"])
    configs = [_experiment_config(args, "prompt", "d", "o", s) for s in args.seeds]
    text = plan_text(configs, "lmbff")
    assert "5 x prompt: backend full, learning rate 1e-05, 1000 steps of batch 8" in text
    assert "about 2.0 h of training each" in text and "about 10.2 h in all" in text
    args = build_parser().parse_args(base)
    text = plan_text([_experiment_config(args, "prompt", "d", "o", s) for s in args.seeds], "fast")
    assert "backend lora, learning rate 0.001, 32 steps" in text and "about 88 s of training each" in text
    args = build_parser().parse_args([*base, "--model", "some/folder"])
    text = plan_text([_experiment_config(args, "prompt", "d", "o", 13)], "fast")
    assert "measured on the first steps" in text
    args = build_parser().parse_args([*base, "--precision", "bf16"])
    text = plan_text([_experiment_config(args, "prompt", "d", "o", 13)], "fast")
    assert "in bf16 (preset fast" in text and "measured on the first steps" in text
    # the default, auto, says what it resolved to on this machine
    args = build_parser().parse_args(base[:-2])
    text = plan_text([_experiment_config(args, "prompt", "d", "o", 13)], "fast")
    resolved = resolve_precision("auto")
    native = "multiplies bf16 natively" if resolved == "bf16" else "does not multiply bf16 natively"
    assert f"in {resolved} (auto: this machine {native})" in text
    assert ("about 88 s of training each" in text) == (resolved == "fp32")
    # Seen: full fine-tuning stays in fp32 under auto, and the plan blamed the machine for it.
    args = build_parser().parse_args([*base[:-2], "--backend", "full"])
    text = plan_text([_experiment_config(args, "prompt", "d", "o", 13)], "fast")
    assert "in fp32 (auto: full fine-tuning stays in fp32, which bf16 barely sped up)" in text


def test_zero_shot_and_report_share_one_schema_and_report_writes_beside_runs(
    bert_dir, tmp_path, capsys, monkeypatch
):
    """Seen: `report` skipped zero-shot folders (results.json, no metrics.json) and wrote into the first
    run's folder; zero-shot overwrote a finished --out; files were created 0600 whatever the umask."""
    import os

    monkeypatch.chdir(tmp_path)
    out = tmp_path / "zs"
    command = ["zero-shot", "--task", REVIEWS, "--data-dir", str(DEMO_DATA), "--model", str(bert_dir),
               "--out", str(out), "--limit", "20"]  # fmt: skip
    assert main(command) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["method"] == "zero-shot" and metrics["backend"] == "none"
    assert set(metrics["test"]) >= {"accuracy"} and set(metrics["test_calibrated"]) >= {"accuracy"}
    mode = (out / "metrics.json").stat().st_mode & 0o777
    assert mode == 0o666 & ~_umask(os)
    row = json.loads((out / "predictions.jsonl").read_text().splitlines()[0])
    assert row["text"]["text_a"] and set(row) >= {"scores", "calibrated_scores", "label", "prediction"}
    assert main(command) == 2
    assert "already holds a zero-shot run" in capsys.readouterr().out
    assert main(["report", str(out)]) == 0
    capsys.readouterr()
    (report,) = (tmp_path / "runs").glob("report-*")
    assert "| zero-shot + calibration |" in (report / "report.md").read_text()
    assert not (out / "report.md").exists()
    assert main(["report", str(out), "--out", str(out / "inside")]) == 2
    assert "inside the run folder" in capsys.readouterr().out


def _umask(os) -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
