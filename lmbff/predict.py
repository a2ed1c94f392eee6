"""Predict with trained states: one frozen base model, any number of task states attached in turn.

Each state is scored exactly as its run scored its test set (same template, length budget,
demonstrations and seed, same batch size), so the predictions are bit-identical to the run's.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from prompts.library import load_task

from .data import load_split
from .demonstrations import Demonstrations
from .evaluate import results_markdown, score_examples
from .experiment import ExperimentConfig, prediction_records
from .io import atomic_write_json, atomic_write_jsonl, atomic_write_text
from .model import PromptModel, regression_prediction
from .pretrained import LoadedModel, load_model
from .state import TrainedState

TEST_BATCH_SIZE = 16  # what run_experiment scores test with (batching is part of bit-identity)


def predict_with_states(
    states: list[str | os.PathLike],
    out: str | os.PathLike,
    *,
    data_dir: str | None = None,
    split: str = "test",
    model: str | None = None,
    progress: bool = True,
) -> list[dict]:
    """Score ``split`` of each state's task (from ``data_dir``, default: the state's own data) and write
    ``<out>/<name>/predictions.jsonl`` ``summary.json`` (with metrics when the data is labelled) and
    ``results.md`` (labelled data). Base models are loaded once and shared by every state trained on them."""
    loaded: dict[tuple, LoadedModel] = {}
    summaries = []
    names: set[str] = set()
    for folder in states:
        state = TrainedState.load(folder)
        experiment = ExperimentConfig.from_dict(state.experiment)
        key = (model or experiment.model, experiment.model_kind)
        if key not in loaded:
            loaded[key] = load_model(key[0], kind=key[1])
        base = loaded[key]
        task_file = load_task(experiment.task)
        task, prompt = task_file.task, task_file.prompt(experiment.template)
        scorer = PromptModel.for_task(
            base.model, base.tokenizer, task, prompt, kind=base.kind, max_length=experiment.max_length
        )
        source = data_dir or experiment.data_dir
        examples = load_split(source, split, task, require_label=False).examples
        demos = None
        if experiment.method == "prompt-demos":
            train = load_split(experiment.data_dir, "train", task).examples
            demos = Demonstrations(train, task, experiment.demonstrations)
        attached = state.attach(scorer)
        try:
            log_scores = scorer.predict_log_scores(
                examples,
                batch_size=TEST_BATCH_SIZE,
                demonstrations=demos,
                seed=experiment.training.seed,
                progress=progress and f"{task.name} ({Path(folder)})",
            )
        finally:
            attached.detach()
        name = _unique(Path(folder).resolve().parent.name or task.name, names)
        target = Path(out) / name
        labelled = all(e.label is not None for e in examples)
        summary = {
            "state": str(folder),
            "task": task.name,
            "metric": task.metric,
            "split": split,
            "examples": len(examples),
        }
        if labelled:
            result = score_examples(task, examples, log_scores, f"{experiment.method} ({experiment.backend})")
            predictions = result.predictions
            summary["metrics"] = result.metrics
            atomic_write_text(target / "results.md", results_markdown(task, [result], f"{task.name}: {name}"))
        elif task.is_regression:
            predictions = regression_prediction(log_scores, task.value_range).tolist()
        else:
            predictions = [task.labels[i] for i in np.argmax(log_scores, axis=1)]
        records = prediction_records(task, examples, log_scores, predictions)
        atomic_write_jsonl(target / "predictions.jsonl", records)
        atomic_write_json(target / "summary.json", summary)
        summary["out"] = str(target)
        summaries.append(summary)
    return summaries


def _unique(name: str, taken: set[str]) -> str:
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}-{n}", n + 1
    taken.add(candidate)
    return candidate
