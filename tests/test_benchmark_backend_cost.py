"""The backend benchmark's table: cost ratios to full, and accuracy merged from few-shot runs."""

from __future__ import annotations

import json
from pathlib import Path

from lmbff import report as backend_cost  # the table code lives in the library (benchmarks import it)


def _cost(backend: str, trainable: int, state: int, step: float, peak: float) -> dict:
    return {
        "backend": backend,
        "trainable_parameters": trainable,
        "total_parameters": 1000,
        "state_bytes": state,
        "seconds_per_step": step,
        "wall_seconds": 7 * step,
        "peak_memory_mb": peak,
    }


def _run(root: Path, task: str, backend: str, seed: int, accuracy: float, method: str = "prompt") -> None:
    folder = root / task / f"{method}-{backend}" / f"seed-{seed}"
    folder.mkdir(parents=True)
    metrics = {
        "task": task,
        "method": method,
        "backend": backend,
        "seed": seed,
        "metric": "accuracy",
        "test": {"accuracy": accuracy},
        "seconds": 10.0,
        "peak_memory_mb": 100.0,
    }
    (folder / "metrics.json").write_text(json.dumps(metrics))


def test_the_table_gives_cost_ratios_and_accuracy_differences_to_full(tmp_path):
    for seed, value in zip([13, 21, 42, 87, 100], [0.80, 0.90, 0.85, 0.85, 0.85], strict=True):
        _run(tmp_path, "SST-2", "full", seed, value)
    for seed, value in zip([13, 21], [0.70, 0.80], strict=True):
        _run(tmp_path, "SST-2", "ln", seed, value)
    _run(tmp_path, "SST-2", "ln", 13, 0.10, method="prompt-demos")  # another method: not this table's
    _run(tmp_path, "TREC", "full", 13, 0.5)

    accuracy = backend_cost.prompt_accuracy(tmp_path)
    assert sorted(accuracy) == ["SST-2", "TREC"]
    assert sorted(accuracy["SST-2"]) == ["full", "ln"]
    table = backend_cost.backend_table(
        [_cost("full", 1000, 4 * 2**20, 4.0, 800.0), _cost("ln", 10, 2**20, 1.0, 200.0)], accuracy
    )
    lines = table.splitlines()
    assert lines[0].split(" | ")[-2:] == ["SST-2 accuracy [vs full]", "TREC accuracy [vs full] |"]
    full = [cell.strip() for cell in lines[2].strip("|").split("|")]
    ln = [cell.strip() for cell in lines[3].strip("|").split("|")]
    assert full == [
        "full",
        "1,000 (100.000%)",
        "4.00 (1x)",
        "4.00 (1x)",
        "800 (1x)",
        "85.0 (3.2)",
        "50.0 (0.0), 1 of 5 seeds",
    ]
    assert ln == [
        "ln",
        "10 (1.000%)",
        "1.00 (0.25x)",
        "1.00 (0.25x)",
        "200 (0.25x)",
        "75.0 (5.0) [-10.0], 2 of 5 seeds",
        "n/a",
    ]


def test_the_cost_worker_times_a_pair_task_in_either_template(gpt_dir, tmp_path):
    """A pair task's batch is timed in the scoring mode its template implies: LM-BFF's slot between
    the sentences scores the filled sequence, the slot-last variant reads one position."""
    import importlib
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    cost = importlib.import_module("backend_cost")
    rows = ["text_a\ttext_b\tlabel"] + [
        f"a man is walking {i}.\tsomeone walks {i}.\t{label}"
        for i, label in enumerate(["entailment", "contradiction", "neutral"] * 3)
    ]
    for split in ("train", "test"):
        (tmp_path / f"{split}.tsv").write_text("\n".join(rows) + "\n")
    seen = {}
    for template in ("lmbff", "question_answer"):
        row = cost.measure("ln", str(gpt_dir), 2, tmp_path, "fp32", 4, task="MNLI", template=template)
        assert row["task"] == "MNLI" and row["template"] == template
        assert row["seconds_per_step"] > 0 and row["inference_examples_per_second"] > 0
        seen[template] = row["scoring"]
    assert seen == {"lmbff": "sequence", "question_answer": "next_token"}


def test_a_bad_task_or_template_is_refused_before_any_worker_starts(capsys):
    import importlib
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    cost = importlib.import_module("backend_cost")
    assert cost.main(["--task", "MNLI", "--template", "nope", "--backends", "ln"]) == 2
    assert "no template named 'nope'" in capsys.readouterr().err
    assert cost.main(["--task", "NOPE", "--backends", "ln"]) == 2
    assert "no task file for 'NOPE'" in capsys.readouterr().err


def test_a_cost_table_without_full_promises_no_ratios_nor_another_tasks_accuracy(tmp_path, capsys):
    """A one-backend cost run of a pair task (the pair-template check) used to print "(x full)" headers
    with no full row, SST-2 and TREC accuracy beside an MNLI batch's cost, and an empty bf16 section."""
    import importlib
    import sys

    _run(tmp_path / "few_shot", "SST-2", "lora", 13, 0.8)
    table = backend_cost.backend_table([_cost("lora", 10, 2**20, 3.0, 200.0)], {})
    header = table.splitlines()[0]
    assert "x full" not in header and header.startswith("| backend | trainable (% of model) | state MB |")

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    cost = importlib.import_module("backend_cost")
    out = tmp_path / "cost"
    out.mkdir()
    (out / "cost.json").write_text(
        json.dumps([{**_cost("lora", 10, 2**20, 3.0, 200.0), "precision": "fp32"}])
    )
    common = ["--table-only", "--out", str(out), "--accuracy-from", str(tmp_path / "few_shot")]
    assert cost.main([*common, "--task", "MNLI", "--template", "question_answer"]) == 0
    text = (out / "cost.md").read_text()
    assert "SST-2" not in text and "Accuracy:" not in text and "bf16 against fp32" not in text
    assert cost.main(common) == 0  # SST-2's own batch keeps its accuracy column
    assert "SST-2 accuracy" in (out / "cost.md").read_text()
    capsys.readouterr()
