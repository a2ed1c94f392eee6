"""Template ensembles (LM-BFF, Gao et al. 2021): one model tuned per template, their label
probabilities averaged on test.

Each member is an ordinary run in ``<out>/members/<template>/`` (resumable on its own); the ensemble's
``metrics.json`` holds the averaged test metrics and every member's.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from prompts.library import TaskFile, load_task

from .data import load_split
from .errors import ConfigError
from .evaluate import results_markdown, score_examples
from .experiment import ExperimentConfig, finished_run, run_experiment
from .files import atomic_write_json
from .machine import cpu_seconds, describe_machine
from .results import DEV_PREDICTIONS, ENSEMBLE_MEMBERS, PREDICTIONS, RunResult, prediction_records


def resolve_ensemble(spec: str, task_file: TaskFile) -> list[str]:
    """Template names from ``a,b,c`` or ``topN`` (the first N templates named ``auto_<rank>``, as
    ``lmbff search-templates`` writes them). Raises ConfigError naming what the task file has."""
    names = list(task_file.prompts)
    top = re.fullmatch(r"top(\d+)", spec.strip())
    if top:
        ranked = sorted((n for n in names if re.fullmatch(r"auto_\d+", n)), key=lambda n: int(n[5:]))
        wanted = int(top.group(1))
        if len(ranked) < wanted:
            raise ConfigError(
                f"--template-ensemble {spec}: {task_file.path} has {len(ranked)} templates named auto_<rank> "
                "(paste the templates.yaml of lmbff search-templates into the task file)"
            )
        return ranked[:wanted]
    chosen = [n.strip() for n in spec.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in task_file.prompts]
    if unknown or len(chosen) < 2:
        raise ConfigError(f"--template-ensemble needs two or more of {names}; got {chosen}")
    return chosen


def run_ensemble(config, *, resume: bool = False, progress: bool = True) -> dict:
    """Run every member (``config.template_ensemble``), then average their test probabilities."""
    from accelerate import Accelerator

    out = Path(config.out)
    finished = finished_run(config, resume)
    if finished is not None:
        return finished
    # Under torchrun every process runs this: only the main one writes, and the others read the
    # members' predictions (written by the main process) only after the barrier below.
    processes = Accelerator()
    processes.wait_for_everyone()
    if processes.is_main_process:
        atomic_write_json(out / "config.json", config.to_dict())
    members = []
    for name in config.template_ensemble:
        member: ExperimentConfig = replace(
            config, template=name, template_ensemble=[], out=str(out / ENSEMBLE_MEMBERS / name)
        )
        members.append(run_experiment(member, resume=True, progress=progress))
    processes.wait_for_everyone()
    # The ensemble's time is its members' own (each recorded, also when an earlier process ran it) plus
    # the averaging from here: timed from before the members, they would count twice.
    started, started_cpu = time.perf_counter(), cpu_seconds()
    if not processes.is_main_process:
        return {}
    task = load_task(config.task).task
    test = load_split(config.data_dir, config.test_split, task, columns=config.columns).examples
    log_scores = _averaged_log_scores(out, config.template_ensemble, PREDICTIONS, task)
    result = score_examples(task, test, log_scores, f"ensemble of {len(members)} templates")
    dev_scores = _averaged_log_scores(out, config.template_ensemble, DEV_PREDICTIONS, task)
    dev_result = None
    if dev_scores is not None and config.dev_split:  # members from before runs wrote dev predictions: none
        dev = load_split(config.data_dir, config.dev_split, task, columns=config.columns).examples
        dev_result = score_examples(task, dev, dev_scores, f"ensemble of {len(members)} templates (dev)")
    metrics = {
        "task": task.name,
        "method": f"{config.method}-ensemble",
        "backend": config.backend,
        # as each member ran them: a report labels the ensemble by them (lean full, bf16), as it does runs
        "backend_options": members[0].get("backend_options"),
        "precision": members[0].get("precision", "fp32"),
        "model": config.model,
        "template": "+".join(config.template_ensemble),
        "seed": config.training.seed,
        "metric": task.metric,
        "test": result.metrics,
        "members": {m["template"]: m["test"][task.metric] for m in members},
        **(
            {
                "dev": dev_result.metrics,
                "members_dev": {m["template"]: (m.get("dev") or {}).get(task.metric) for m in members},
            }
            if dev_result is not None
            else {}
        ),
        "trainable_parameters": sum(m["trainable_parameters"] for m in members),
        "total_parameters": members[0]["total_parameters"],
        "seconds": time.perf_counter() - started + sum(m["seconds"] for m in members),
        "cpu_seconds": cpu_seconds() - started_cpu + sum(m.get("cpu_seconds", 0.0) for m in members),
        "peak_memory_mb": max(m["peak_memory_mb"] for m in members),
        "machine": describe_machine(),
    }
    shown = [result] + ([dev_result] if dev_result is not None else [])
    RunResult.from_dict(metrics).write(
        out,
        markdown=results_markdown(task, shown, f"{task.name}: template ensemble"),
        records=prediction_records(task, test, log_scores, result.predictions),
    )
    return metrics


def _averaged_log_scores(out: Path, members: list[str], file: str, task) -> np.ndarray | None:
    """The log of the members' label probabilities averaged example by example, from each member's
    ``file`` (test or dev predictions); None when a member has no such file."""
    paths = [out / ENSEMBLE_MEMBERS / name / file for name in members]
    if not all(path.exists() for path in paths):
        return None
    probabilities = sum(
        np.array(
            [
                [json.loads(line)["scores"][label] for label in task.labels]
                for line in path.read_text().splitlines()
            ]
        )
        for path in paths
    )
    return np.log(probabilities / len(members))
