"""The main job (``make demo``): few-shot sentiment on the reviews the toolkit ships in data/reviews.

Zero-shot with LM-BFF's manual template (with and without contextual calibration), then prompt-based
LN-tuning on 16 examples per class, evaluated on the 108 held-out reviews, with a per-class table.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from prompts.library import load_task_file

from .data import load_split
from .evaluate import EvalResult, results_markdown, score_examples, zero_shot
from .files import atomic_write_json, atomic_write_text
from .model import PromptModel
from .paths import bundled_data_dir
from .pretrained import load_model
from .train import Trainer, TrainingArguments
from .tuning import LNConfig


def demo_data_dir() -> Path:
    return bundled_data_dir("reviews")


def run_demo(
    model_name: str, model_kind: str | None, steps: int, out_dir: Path, console: Console
) -> list[EvalResult]:
    started = time.perf_counter()
    data_dir = demo_data_dir()
    task_file = load_task_file(data_dir / "task.yaml")
    task, prompt = task_file.task, task_file.prompt()
    train = load_split(data_dir, "train", task).examples
    test = load_split(data_dir, "test", task).examples
    console.print(
        f"[bold]Demo[/]: {task.description}; {len(train)} training reviews (16 per class), "
        f"{len(test)} test reviews; template {prompt.template.text!r}, label words {prompt.label_words}",
        markup=True,
    )
    with console.status(f"loading {model_name} (the first run converts it once, about two minutes)..."):
        loaded = load_model(model_name, kind=model_kind)
    pm = PromptModel.for_task(loaded.model, loaded.tokenizer, task, prompt, kind=loaded.kind)
    run, _ = zero_shot(pm, task, test, model_name=model_name, template_name=prompt.name)
    results = list(run.results)

    torch.manual_seed(0)
    args = TrainingArguments(max_steps=steps, batch_size=8, eval_every=0, seed=13)
    trainer = Trainer(pm, task, LNConfig(), args, train)
    share = 100 * trainer.trainable / trainer.total
    console.print(
        f"LN-tuning: {trainer.trainable:,} of {trainer.total:,} parameters train ({share:.3f}%), "
        f"{steps} steps of {args.batch_size}, lr {LNConfig().learning_rate}"
    )
    trainer.train()
    scores = pm.predict_log_scores(test, progress="after LN-tuning")
    tuned = score_examples(task, test, scores, f"LN-tuning, 16 per class ({steps} steps)")
    results.append(tuned)

    table = Table(title=f"{task.name}: accuracy on {len(test)} held-out reviews ({model_name})")
    for column in ("method", "accuracy", "macro-F1"):
        table.add_column(column, justify="left" if column == "method" else "right")
    for r in results:
        table.add_row(r.name, f"{r.metrics['accuracy']:.3f}", f"{r.metrics['macro_f1']:.3f}")
    console.print(table)
    per_class = Table(title="per class, after LN-tuning")
    for column in ("label", "support", "precision", "recall", "F1"):
        per_class.add_column(column, justify="left" if column == "label" else "right")
    for c in tuned.per_class:
        per_class.add_row(
            c["label"], str(c["support"]), f"{c['precision']:.3f}", f"{c['recall']:.3f}", f"{c['f1']:.3f}"
        )
    console.print(per_class)
    seconds = time.perf_counter() - started
    atomic_write_json(
        out_dir / "results.json",
        {
            "task": task.name,
            "model": model_name,
            "template": prompt.name,
            "seconds": seconds,
            "trainable_parameters": trainer.trainable,
            "total_parameters": trainer.total,
            "config": trainer.config(),
            "results": [{"name": r.name, "metrics": r.metrics, "per_class": r.per_class} for r in results],
        },
    )
    atomic_write_text(out_dir / "results.md", results_markdown(task, results, f"Demo: {task.description}"))
    console.print(f"done in {seconds:.0f} s; results in {out_dir}/results.json and results.md")
    return results
