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
    assert main(["zero-shot", "--task", "SST-2", "--data-dir", str(tmp_path), "--model", str(gpt_dir)]) == 2
    assert "no 'test' split" in capsys.readouterr().out
    bad = tmp_path / "test.tsv"
    bad.write_text("text_a\tlabel\nfine\t1\n\t0\n")
    assert main(["zero-shot", "--task", "SST-2", "--data-dir", str(tmp_path), "--model", str(gpt_dir)]) == 2
    assert "test.tsv:3: field 'text_a': empty text" in capsys.readouterr().out
    assert (
        main(
            [
                "zero-shot",
                "--task",
                "SST-2",
                "--data-dir",
                str(tmp_path),
                "--model",
                str(tmp_path / "none"),
                "--skip-bad",
            ]
        )
        == 2
    )
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
