"""One experiment = one task, one k-shot split, one method: train on ``train``, select on ``dev``, score
``test``, and write everything a report needs.

Methods: ``zero-shot`` (the prompt, no training), ``prompt`` (prompt-based tuning, LM-BFF),
``prompt-demos`` (the same with demonstrations), ``finetune`` (a classification head, the baseline).

Files in the output folder, each written atomically: ``config.json`` (the exact configuration),
``metrics.json`` (test and dev metrics, training history, time, peak memory, trainable parameters),
``results.md``, ``predictions.jsonl``, and ``state/`` (the trained parameters as safetensors with
their config). ``checkpoint/`` exists while training and is removed when the run completes.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from prompts.library import load_task

from .config import DEFAULT_PRECISION, METHODS, PrototypeConfig, check_precision, check_verbalizer
from .data import check_renders, likely_mistakes, load_split
from .demonstrations import DemonstrationConfig, Demonstrations
from .errors import ConfigError
from .evaluate import (
    apply_calibration,
    content_free_probabilities,
    dev_thresholds,
    results_markdown,
    score_examples,
)
from .files import atomic_write_json, markdown_table
from .logs import log
from .machine import cpu_seconds, describe_machine
from .memory import PeakMemory
from .pretrained import DEFAULT_MODEL, load_model
from .results import RunResult, prediction_records
from .scoring import get_mode
from .state import ScoringSpec, base_identity, save_state
from .train import Trainer, TrainingArguments
from .tuning import distinctive_options, make_config, pin_changed_defaults


@dataclass
class ExperimentConfig:
    """Everything that defines a run (saved as config.json and compared on --resume)."""

    task: str
    data_dir: str
    out: str
    method: str = "prompt"
    model: str = DEFAULT_MODEL
    model_kind: str | None = None
    template: str | None = None
    backend: str = "full"
    backend_options: dict[str, dict] = field(default_factory=dict)
    max_length: int = 128
    # The scoring mode (lmbff.scoring, a plugin's included); None: chosen from the model kind and template
    mode: str | None = None
    training: TrainingArguments = field(default_factory=TrainingArguments)
    demonstrations: DemonstrationConfig = field(default_factory=DemonstrationConfig)
    test_split: str = "test"
    # The training and dev splits: names in data_dir, or files (``train --data-file/--dev-file``);
    # no dev split (None): nothing to choose a checkpoint on, so the last step is kept.
    train_split: str = "train"
    dev_split: str | None = "dev"
    # A data file's column -> the task's field or "label" (--text-column, --text-b-column, --label-column)
    columns: dict[str, str] = field(default_factory=dict)
    template_ensemble: list[str] = field(default_factory=list)  # template names; one run each, averaged
    skip_bad: bool = False  # skip malformed rows of train, dev and test (and say how many)
    precision: str = DEFAULT_PRECISION  # the weights' precision: fp32, bf16 or auto (lmbff.precision)
    # How classes are scored: words, prototype or words+prototype (lmbff.prototypes); None: the
    # template's own (``verbalizer:`` in the task file), else words
    verbalizer: str | None = None
    prototypes: PrototypeConfig = field(default_factory=PrototypeConfig)
    # A label value meaning "none of these classes" (CLINC150's "oos"): such rows are not trained on;
    # on dev they set the confidence below which the run abstains; on test they are scored as such.
    out_of_scope: str | None = None

    def __post_init__(self):
        check_precision(self.precision)
        if isinstance(self.prototypes, dict):
            self.prototypes = PrototypeConfig(**self.prototypes)
        if self.verbalizer is not None:
            check_verbalizer(self.verbalizer)
            if self.verbalizer != "words" and self.method in ("zero-shot", "finetune"):
                raise ConfigError(
                    f"verbalizer {self.verbalizer!r} learns its prototypes from training examples; "
                    f"--method {self.method} trains none (use --method prompt)"
                )
        if self.method not in METHODS:
            raise ConfigError(f"unknown method {self.method!r}; one of {', '.join(METHODS)}")
        if self.mode is not None:
            if self.method == "finetune":
                raise ConfigError(
                    "--method finetune scores with a classification head: it has no scoring mode"
                )
            get_mode(self.mode)  # ConfigError now, listing the known modes, not after loading the model
        make_config(self.backend, self.backend_options)  # ConfigError now, not after loading the model
        if self.method == "finetune" and self.backend != "full":
            raise ConfigError(
                "--method finetune trains a new classification head with the whole model (--backend full); "
                f"backend {self.backend!r} applies to the prompt methods"
            )
        if self.method != "zero-shot":
            # The options whose default changed are recorded as this run uses them, so that config.json
            # means the same to every later version; the finetune baseline trains every weight.
            self.backend_options = pin_changed_defaults(
                self.backend, self.backend_options, legacy=self.method == "finetune"
            )
        if isinstance(self.training, dict):
            self.training = TrainingArguments(**self.training)
        if isinstance(self.demonstrations, dict):
            self.demonstrations = DemonstrationConfig(**self.demonstrations)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def resolved_precision(self) -> str:
        """fp32 or bf16: what ``precision`` is for this run's backend on this machine."""
        return run_precision(self.precision, self.method, self.backend)

    @classmethod
    def from_dict(cls, data: dict) -> ExperimentConfig:
        """From a saved config.json; fields added since it was written take their defaults, and backend
        options whose default changed since take the value the run was made with."""
        data = dict(data)
        if data.get("method", "prompt") != "zero-shot":
            data["backend_options"] = pin_changed_defaults(
                data.get("backend", "full"), data.get("backend_options"), legacy=True
            )
        return cls(**data)


def run_precision(precision: str, method: str, backend: str) -> str:
    """fp32 or bf16: what ``precision`` is on this machine for a run of ``method`` that trains with
    ``backend`` (a zero-shot run trains none; :func:`lmbff.precision.resolve_precision`)."""
    from .precision import resolve_precision

    return resolve_precision(precision, backend=backend if method != "zero-shot" else None)


def finished_run(config: ExperimentConfig, resume: bool) -> dict | None:
    """The metrics of the run already in ``config.out`` when it finished, else None.

    Raises:
        FileExistsError: the folder holds a run and ``resume`` is not set.
        ValueError: the folder holds a run of another configuration.
    """
    out = Path(config.out)
    if not (out / "config.json").exists():
        return None
    if not resume:
        raise FileExistsError(
            f"{out} already holds a run; pass --resume to continue it or choose another --out"
        )
    saved = ExperimentConfig.from_dict(json.loads((out / "config.json").read_text())).to_dict()
    if json.loads(json.dumps(saved)) != json.loads(json.dumps(config.to_dict())):
        raise ConfigError(f"{out}/config.json differs from this run's configuration; choose another --out")
    if (out / "metrics.json").exists():
        return json.loads((out / "metrics.json").read_text())
    return None


@dataclass
class _Inputs:
    """A run's task, prompt and rows, checked before anything is written or loaded; the rows labelled
    ``out_of_scope`` are set apart from each split."""

    task: object
    prompt: object
    train: list
    dev: list
    test: list
    dev_out: list
    test_out: list


@dataclass
class _Scored:
    """A run's dev and test scores and their results, raw and (zero-shot) calibrated."""

    name: str
    test_scores: object
    dev_scores: object
    test_result: object
    dev_result: object
    content_free: object = None
    calibrated_test: object = None
    calibrated_results: list | None = None
    # a multi-label task's per-label thresholds, chosen on dev (lmbff.multi_label); None otherwise
    thresholds: object = None


def run_experiment(
    config: ExperimentConfig, *, resume: bool = False, progress: bool = True, loaded=None
) -> dict:
    """Run one experiment and return its metrics.json content.

    A completed run (``metrics.json`` present) is returned as it is when ``resume`` is set and is an
    error otherwise, so an earlier result is never overwritten by accident. The stages: check the inputs
    (before the folder is claimed or a model loads), build the scorer, train, score dev and test,
    abstain where asked, then write the state, metrics, results and predictions.

    Raises:
        FileExistsError: the output folder holds a completed or started run and ``resume`` is not set.
        ConfigError: ``resume`` was asked for a folder made with another configuration, or the
            configuration does not fit the task or the processes.
    """
    if config.template_ensemble:
        raise ConfigError("a template ensemble is several runs: run it with lmbff.runs.run")
    out = Path(config.out)
    finished = finished_run(config, resume)
    if finished is not None:
        return finished
    # Under `accelerate launch` / torchrun every process runs this; only the main one writes files.
    from accelerate import Accelerator

    processes = Accelerator()  # (not PartialState(): only Accelerator reads ACCELERATE_USE_CPU)
    started, started_cpu = time.perf_counter(), cpu_seconds()
    memory = PeakMemory()
    inputs = _checked_inputs(config, processes.num_processes)
    processes.wait_for_everyone()  # every process has checked the folder before anything is written
    main_process = processes.is_main_process
    if main_process:
        atomic_write_json(out / "config.json", config.to_dict())
    loaded = loaded or load_model(config.model, kind=config.model_kind, precision=config.resolved_precision)
    base = base_identity(loaded)  # before training changes any weight
    scorer = _scorer(config, loaded, inputs)
    demos = (
        Demonstrations(inputs.train, inputs.task, config.demonstrations)
        if config.method == "prompt-demos"
        else None
    )
    trainer, result = None, None
    if config.method != "zero-shot":
        trainer = Trainer(
            scorer, inputs.task, make_config(config.backend, config.backend_options), config.training,
            inputs.train, inputs.dev, demonstrations=demos,
        )  # fmt: skip
        if main_process:  # logged; progress decides whether it is shown
            share = 100 * trainer.trainable / trainer.total
            log.info(
                f"{config.method} / {config.backend}: {trainer.trainable:,} of {trainer.total:,} parameters "
                f"train ({share:.3f}%)"
            )
        result = trainer.train(progress=progress, checkpoint_dir=out / "checkpoint", resume=resume)
    train_seconds = time.perf_counter() - started
    scored = _score(config, scorer, inputs, demos, progress)
    earlier = (result.earlier_seconds, result.earlier_cpu_seconds) if result else (0.0, 0.0)
    metrics = {
        **_metrics(config, loaded, scorer, inputs, scored, trainer, result),
        # a resumed run also counts the training its earlier processes did up to the checkpoint
        "train_seconds": train_seconds + earlier[0],
        "seconds": time.perf_counter() - started + earlier[0],
        "cpu_seconds": cpu_seconds() - started_cpu + earlier[1],
        "peak_memory_mb": memory.peak_mb(),
        "machine": describe_machine(),
    }
    abstaining = None
    if config.out_of_scope is not None:
        abstaining = abstain_on_test(
            config.out_of_scope, scorer, inputs.task, inputs.test, scored.test_scores, inputs.test_out, demos,
            config.training.seed, dev=inputs.dev, dev_scores=scored.dev_scores, dev_out=inputs.dev_out,
            content_free=scored.content_free,
        )  # fmt: skip
        metrics["out_of_scope"] = abstaining["metrics"]
    if main_process:
        _write_run(config, out, metrics, scorer, inputs, scored, trainer, demos, base, abstaining)
    return metrics


def _checked_inputs(config: ExperimentConfig, num_processes: int) -> _Inputs:
    """Everything that can be wrong with the inputs, found before the folder is claimed and before a
    model loads: a failed start leaves nothing behind that blocks the corrected rerun."""
    task_file = load_task(config.task)
    task, prompt = task_file.task, task_file.prompt(config.template)
    if task.multi_label:
        from .multi_label import check_multi_label_method

        check_multi_label_method(task, config.method, config.out_of_scope)
    if config.method != "zero-shot":
        config.prototypes.check_activation(
            config.verbalizer or prompt.verbalizer_kind, task.multi_label, task.name
        )
    if config.out_of_scope is not None and config.out_of_scope in task.labels:
        raise ConfigError(
            f"out_of_scope {config.out_of_scope!r} is one of the task's labels {list(task.labels)}"
        )
    train, test = (_read_split(config, split, task) for split in (config.train_split, config.test_split))
    dev = _read_split(config, config.dev_split, task) if config.dev_split else []
    train, train_out = _split_out_of_scope(config, train)
    dev, dev_out = _split_out_of_scope(config, dev)
    test, test_out = _split_out_of_scope(config, test)
    if train_out:
        log.info(f"note: {len(train_out)} training rows labelled {config.out_of_scope!r} are not trained on")
    if config.method != "finetune":  # rows the template cannot render: named, or skipped with skip_bad
        train, dev, test = (_renderable(config, rows, prompt.template) for rows in (train, dev, test))
    if config.method != "zero-shot":
        for note in likely_mistakes(task, train, dev):
            log.warning(f"warning: {note}")
    if config.method != "zero-shot" and config.training.batch_size < num_processes:
        raise ConfigError(
            f"batch_size {config.training.batch_size} is smaller than the {num_processes} "
            "data-parallel processes; each process needs at least one example per step"
        )
    return _Inputs(task, prompt, train, dev, test, dev_out, test_out)


def _scorer(config: ExperimentConfig, loaded, inputs: _Inputs):
    """The run's scorer: the classification-head baseline, or a prompt model (with prototypes where the
    verbalizer asks for them and the method trains)."""
    if config.method == "finetune":
        from .finetune import FineTuneClassifier

        return FineTuneClassifier(
            loaded.model, loaded.tokenizer, inputs.task, kind=loaded.kind, max_length=config.max_length
        )
    from .model import PromptModel

    scorer = PromptModel.for_task(
        loaded.model, loaded.tokenizer, inputs.task, inputs.prompt, kind=loaded.kind,
        max_length=config.max_length, mode=config.mode,
    )  # fmt: skip
    if config.method != "zero-shot":
        scorer.use_prototypes(config.verbalizer or inputs.prompt.verbalizer_kind, config.prototypes)
    return scorer


def _score(config: ExperimentConfig, scorer, inputs: _Inputs, demos, progress: bool) -> _Scored:
    """Dev and test scores and results; zero-shot also calibrated (Zhao et al. 2021), from the same
    scoring pass."""
    task, dev, test, seed = inputs.task, inputs.dev, inputs.test, config.training.seed
    content_free = content_free_probabilities(scorer) if config.method == "zero-shot" else None
    dev_scores = scorer.predict_log_scores(dev, demonstrations=demos, seed=seed) if dev else None
    test_scores = scorer.predict_log_scores(
        test, demonstrations=demos, seed=seed, progress=progress and "test"
    )
    name = config.method if config.method != "prompt" else "prompt-based fine-tuning"
    rule = _thresholds(task, dev, dev_scores)
    scored = _Scored(
        name,
        test_scores,
        dev_scores,
        score_examples(task, test, test_scores, name, rule),
        score_examples(task, dev, dev_scores, f"{name} (dev)", rule) if dev else None,
        content_free,
        thresholds=rule,
    )
    if content_free is not None:
        scored.calibrated_test = apply_calibration(test_scores, content_free)
        calibrated_dev = apply_calibration(dev_scores, content_free) if dev else None
        calibrated_rule = _thresholds(task, dev, calibrated_dev)
        scored.calibrated_results = [
            score_examples(task, test, scored.calibrated_test, f"{name} + calibration", calibrated_rule)
        ]
        if dev:
            scored.calibrated_results.append(
                score_examples(task, dev, calibrated_dev, f"{name} + calibration (dev)", calibrated_rule)
            )
    return scored


def _thresholds(task, dev: list, dev_scores):
    """A multi-label task's per-label thresholds: chosen on dev, else the default (0.5 each); None for
    other tasks."""
    if not task.multi_label:
        return None
    from .multi_label import LabelThresholds

    return dev_thresholds(task, dev, dev_scores) if dev else LabelThresholds.default(task)


def _metrics(
    config: ExperimentConfig, loaded, scorer, inputs: _Inputs, scored: _Scored, trainer, result
) -> dict:
    """metrics.json's content but the timing and machine: what ran and what it scored."""
    metrics = {
        "task": inputs.task.name,
        "method": config.method,
        "backend": config.backend if config.method != "zero-shot" else "none",
        "backend_options": config.backend_options,
        "model": config.model,
        "precision": loaded.precision,
        "template": inputs.prompt.name,
        "verbalizer": getattr(scorer, "verbalizer_kind", "words"),
        "seed": config.training.seed,
        "metric": inputs.task.metric,
        "test": scored.test_result.metrics,
        "dev": scored.dev_result.metrics if scored.dev_result else {},
        "per_class": scored.test_result.per_class,
        "best_step": result.best_step if result else 0,
        "history": result.history if result else [],
        "trainable_parameters": trainer.trainable if trainer else 0,
        "total_parameters": trainer.total if trainer else sum(p.numel() for p in loaded.model.parameters()),
        "seconds_per_step": result.seconds_per_step if result else 0.0,
    }
    if result is not None and result.resumed_at_step:
        metrics["resumed_at_step"] = result.resumed_at_step
    if scored.thresholds is not None:
        metrics["thresholds"] = dict(zip(inputs.task.labels, scored.thresholds.thresholds, strict=True))
    if scored.calibrated_results is not None:
        metrics["test_calibrated"] = scored.calibrated_results[0].metrics
        if len(scored.calibrated_results) > 1:
            metrics["dev_calibrated"] = scored.calibrated_results[1].metrics
        metrics["content_free_probabilities"] = [float(p) for p in scored.content_free]
    return metrics


def _write_run(config, out: Path, metrics: dict, scorer, inputs: _Inputs, scored: _Scored, trainer, demos,
               base, abstaining) -> None:  # fmt: skip
    """The state (what was trained, with everything that scores it: no task file needed), then
    metrics.json, results.md and the predictions, through the one writer (RunResult)."""
    task, seed = inputs.task, config.training.seed
    if trainer is not None:
        scoring = ScoringSpec.of(scorer, task, demos, seed) if config.method != "finetune" else None
        if scoring is not None and abstaining is not None and abstaining["metrics"]["rule"] is not None:
            scoring.abstain = {"label": config.out_of_scope, **abstaining["metrics"]["rule"]}
        if scoring is not None and scored.thresholds is not None:
            scoring.thresholds = scored.thresholds.to_dict()
        memory = None
        if getattr(scorer, "prototypes", None) is not None and not task.multi_label:
            from .prototypes import example_memory

            memory = example_memory(scorer, task, inputs.train)  # for adding classes later
        save_state(
            out / "state",
            trainer.trainable_state(),
            trainer.saved_tuning,
            {**config.to_dict(), "data_dir": str(Path(config.data_dir).resolve())},
            scoring=scoring,
            base=base,
            examples=memory,
        )
        metrics["state_bytes"] = (out / "state" / "trained.safetensors").stat().st_size
    calibrated = scored.calibrated_results or []
    shown = [scored.test_result, *([scored.dev_result] if scored.dev_result else []), *calibrated]
    records = prediction_records(
        task, inputs.test, scored.test_scores, scored.test_result.predictions, scored.calibrated_test,
        calibrated[0].predictions if calibrated else None,
    )  # fmt: skip
    markdown = results_markdown(task, shown, f"{task.name}: {scored.name}, seed {seed}") + run_description(
        config, scorer, inputs.train, trainer
    )
    if scored.thresholds is not None:
        from .evaluate import thresholds_markdown

        markdown += thresholds_markdown(task, scored.thresholds, "dev" if inputs.dev else "no rows: 0.5 each")
    if abstaining is not None:
        records = with_abstentions(records, abstaining, config.out_of_scope)
        markdown += abstaining["markdown"]
    dev_records = None
    if scored.dev_result:
        dev_records = prediction_records(task, inputs.dev, scored.dev_scores, scored.dev_result.predictions)
    RunResult.from_dict(metrics).write(out, markdown=markdown, records=records, dev_records=dev_records)
    shutil.rmtree(out / "checkpoint", ignore_errors=True)


def run_description(config: ExperimentConfig, scorer, train: list, trainer) -> str:
    """What produced a run's numbers, for its results.md: model, template, label words, backend,
    learning rate, steps, K and seed."""
    from collections import Counter

    task = getattr(scorer, "task", None)
    if task is not None and task.multi_label:  # an example counts for each of its labels
        per_class = Counter(label for e in train for label in e.label)
    else:
        per_class = Counter(str(e.label) for e in train)
    k = min(per_class.values()) if per_class else 0
    k_text = str(k) if len(set(per_class.values())) <= 1 else f"{k} to {max(per_class.values())}"
    from .precision import precision_of

    rows = [["model", config.model], ["precision", precision_of(scorer.lm)], ["method", config.method]]
    template = getattr(scorer, "template", None)
    if template is not None:
        rows += [
            ["template", f"{template.name}: {template.text}"],
            ["label words", scorer.verbalizer.to_dict()],
        ]
        if getattr(scorer, "prototypes", None) is not None:
            init = trainer.prototype_init if trainer is not None else None
            rows.append(["verbalizer", f"{scorer.verbalizer_kind} (prototypes from {init or 'the state'})"])
    if trainer is not None:
        groups = trainer.param_groups
        rate = config.training.learning_rate
        rates = sorted({g["lr"] for g in groups}) if rate is None else [rate]
        rows += [
            ["backend", config.backend],
            ["learning rate", ", ".join(f"{r:g}" for r in rates)],
            ["steps", f"{config.training.max_steps} of batch {config.training.batch_size}"],
        ]
    rows += [["K (training examples per class)", k_text], ["seed", config.training.seed]]
    return "\n## Run\n\n" + markdown_table(["", ""], rows)


def resume_note(out: str | os.PathLike) -> str | None:
    """What ``--resume`` will do in ``out`` when it is not continuing a checkpoint (None when it is)."""
    from .checkpoint import Checkpoint

    out = Path(out)
    if (out / "metrics.json").exists():
        return f"--resume: {out} holds a finished run; its results are shown, nothing trains"
    if Checkpoint(out / "checkpoint").exists():
        return None
    if (out / "config.json").exists():
        return (
            f"--resume: {out} has no checkpoint yet (none is written before the first evaluation); "
            "training starts at step 0"
        )
    return f"--resume: nothing to resume in {out}; a new run starts"


def _renderable(config: ExperimentConfig, examples: list, template) -> list:
    kept, skipped = check_renders(examples, template, skip_bad=config.skip_bad)
    if skipped:
        log.info(f"skipped {len(skipped)} rows the template cannot render; first: {skipped[0]}")
    return kept


def _split_out_of_scope(config: ExperimentConfig, examples: list) -> tuple[list, list]:
    """(in-scope rows, rows labelled ``config.out_of_scope``)."""
    if config.out_of_scope is None:
        return examples, []
    inside = [e for e in examples if e.label != config.out_of_scope]
    return inside, [e for e in examples if e.label == config.out_of_scope]


def abstain_on_test(
    label: str,
    scorer,
    task,
    test,
    test_scores,
    test_out,
    demos,
    seed,
    dev=(),
    dev_scores=None,
    dev_out=(),
    content_free=None,
    rule=None,
) -> dict:
    """Choose the abstention rule on dev (in-scope and out-of-scope rows; the probabilities, or a
    prototype's similarities where they do better), unless ``rule`` is given (a saved state's), and
    score test with it (lmbff.out_of_scope). ``test_scores`` and ``dev_scores`` are the in-scope rows'
    log-scores, already computed; only the out-of-scope rows are scored here. Returns the metrics, the
    predictions (-1: abstained) and a results.md section."""
    import numpy as np

    from .out_of_scope import OUT_OF_SCOPE, AbstainRule, choose_rule, out_of_scope_metrics

    if isinstance(rule, dict):
        rule = AbstainRule.from_dict(rule)

    def probabilities(scores, outside):
        scores = np.zeros((0, len(task.labels)), dtype=np.float32) if scores is None else scores
        if outside:
            scores = np.concatenate(
                [scores, scorer.predict_log_scores(outside, demonstrations=demos, seed=seed)]
            )
        if content_free is not None:  # zero-shot: abstain on the calibrated scores
            scores = apply_calibration(scores, content_free)
        return np.exp(scores.astype(np.float64))

    def gold(rows):
        return [task.labels.index(str(e.label)) if e.label != label else OUT_OF_SCOPE for e in rows]

    def similarities(rows):
        return (
            None
            if getattr(scorer, "prototypes", None) is None
            else lambda: scorer.prototype_similarities(rows)
        )

    test_rows, dev_rows = list(test) + list(test_out), list(dev) + list(dev_out)
    test_probabilities = probabilities(test_scores, list(test_out))
    note = ""
    if rule is None and dev and dev_out:
        rule = choose_rule(probabilities(dev_scores, list(dev_out)), gold(dev_rows), similarities(dev_rows))
    elif rule is None:
        note = f"no dev rows of both kinds (in-scope and {label!r}): the run never abstains"
        log.warning(f"warning: {note}")
    predicted = test_probabilities.argmax(1)
    if rule is not None:
        predicted = rule.decide(test_probabilities, similarities(test_rows))
    labelled = all(e.label is not None for e in test_rows)
    metrics = {
        "label": label,
        "rule": None if rule is None else asdict(rule),
        "test_examples": len(test_rows),
        "out_of_scope_test_examples": len(test_out),
        **(out_of_scope_metrics(predicted, gold(test_rows)) if labelled else {}),
    }
    if note:
        metrics["note"] = note
    rows = [
        ["rule", "never abstains" if rule is None else f"abstain below {rule.threshold:.4f} ({rule.score})"],
        *[[name.replace("_", " "), f"{metrics[name]:.4f}"] for name in (
            "in_scope_accuracy", "out_of_scope_recall", "out_of_scope_precision", "out_of_scope_f1",
            "accuracy_with_out_of_scope",
        ) if name in metrics],
    ]  # fmt: skip
    markdown = (
        f"\n## Out of scope ({len(test_out)} of {len(test_rows)} test rows labelled "
        f"{label!r})\n\n" + markdown_table(["", ""], rows)
    )
    return {
        "metrics": metrics,
        "predicted": predicted,
        "probabilities": test_probabilities,
        "labels": list(task.labels),
        "rows": test_rows,
        "markdown": markdown,
    }


def with_abstentions(records: list[dict], abstaining: dict, label: str) -> list[dict]:
    """The test records with ``prediction_with_abstention``, and a record for each out-of-scope row."""
    rows, labels = abstaining["rows"], abstaining["labels"]
    out = []
    for i, example in enumerate(rows):
        if i < len(records):
            record = dict(records[i])
        else:  # an out-of-scope row: scored like the others, never part of the task's metrics
            probabilities = abstaining["probabilities"][i]
            record = {
                "source": example.source,
                "text": example.fields,
                "label": example.label,
                "prediction": labels[int(probabilities.argmax())],
                "scores": {name: float(p) for name, p in zip(labels, probabilities, strict=True)},
            }
        chosen = int(abstaining["predicted"][i])
        record["prediction_with_abstention"] = label if chosen < 0 else labels[chosen]
        out.append(record)
    return out


def _read_split(config: ExperimentConfig, split: str, task) -> list:
    report = load_split(
        config.data_dir,
        split,
        task,
        skip_bad=config.skip_bad,
        columns=config.columns,
        out_of_scope=config.out_of_scope,
    )
    for note in report.notes():
        log.info(note)
    return report.examples


def experiment_folder(
    out: str | os.PathLike,
    method: str,
    seed: int,
    backend: str = "full",
    backend_options: dict[str, dict] | None = None,
    precision: str = "fp32",
    verbalizer: str | None = None,
    mode: str | None = None,
) -> Path:
    """``<out>/<method>/seed-<seed>``; ``<method>-<backend>`` for backends other than full, with the
    backend options given and the precision when it is not fp32 (``prompt-full-embeddings-frozen-bf16``),
    so that differently made runs never share a folder. An option at its value from before its default
    changed is left out (``prompt`` is full fine-tuning of every weight, as before lean became the
    default). ``auto`` is named by what it resolves to on this machine: auto runs of two machines may
    differ in precision."""
    precision = run_precision(precision, method, backend)
    parts = [method] if backend == "full" else [method, backend]
    named = {}
    if method != "zero-shot":  # named as the run's config records it (ExperimentConfig)
        pinned = pin_changed_defaults(backend, backend_options, legacy=method == "finetune")
        named = distinctive_options(pinned)
    for name in sorted(named):
        for option, value in sorted(named[name].items()):
            parts.append(f"{name}-{option.replace('_', '-')}-{value}")
    if verbalizer not in (None, "words"):
        parts.append(verbalizer.replace("+", "-"))
    if mode is not None:
        parts.append(f"mode-{mode}")
    if precision != "fp32":
        parts.append(precision)
    return Path(out) / "-".join(parts) / f"seed-{seed}"
