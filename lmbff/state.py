"""A trained state: the tuned parameters (safetensors) and everything needed to score with them (JSON).

``state/trained.safetensors`` + ``state/config.json`` are what a run (or ``PromptClassifier.save``) leaves.
The config is self-contained (format 2): the task definition, the template text, the label words and
their token ids, the scoring mode and length limits, the calibration vector when one is used, the
demonstration pool when demonstrations are used, the training configuration, the toolkit version and
the base model's identity (its name, folder and fingerprint). Loading never reads a task YAML: moving,
editing or deleting it changes nothing, and a state is refused on any base model other than its own.

States written before format 2 named their task file and nothing else. They load only when that file is
one of the toolkit's bundled task files exactly as lmbff 0.1.0 shipped it (a checksum); otherwise they
are refused with the command that re-saves them (:func:`upgrade_legacy_state`), never reinterpreted.

:meth:`TrainedState.attach` puts a state onto a frozen base model (adding the method's modules,
overwriting the base's own tuned tensors) and returns a handle whose ``detach`` gives the base back
exactly as it was, so one loaded base serves any number of tasks in turn.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from prompts.library import Task, find_task_file, load_task_file
from prompts.template import Template, TemplateLocation
from prompts.verbalizer import Verbalizer

from . import __version__
from .errors import StateError
from .files import atomic_write_bytes, atomic_write_json, read_safetensors
from .legacy import legacy_demonstrations, legacy_prompt, legacy_scoring
from .precision import precision_of, rest_dtype, to_rest
from .prototypes import PrototypeConfig, split_prototype_tensors
from .tuning import TuningConfig, config_from_dict
from .tuning.injection import detach as detach_modules

WEIGHTS, CONFIG = "trained.safetensors", "config.json"
# A prototype state's example memory (IPT's example prototypes, lmbff.incremental): the slot features
# of a few training examples per class, which keep the old classes in place when classes are added.
EXAMPLES = "examples.safetensors"
# The classification-head baseline keeps a body and a head, but no template, label words or scoring
# record (it has none), so nothing but its own run scores it (docs/cli.md: "Where the classification-head
# baseline differs").
FINETUNE_STATE = (
    "a --method finetune state (the classification-head baseline): it holds no template or label words, "
    "so only its own run scores it; its test predictions are the run's predictions.jsonl"
)
STATE_FORMAT = 2
# SHA-256 of the bundled task files as lmbff 0.1.0 shipped them: the only task files a format-1 state
# (which stored a task name and no checksum) can be scored with without being re-saved.


@dataclass
class ScoringSpec:
    """How a state scores an example, independent of any task file: the task, the template, the label
    words (and the token ids they had on the base model), the scoring mode, the length budget, the
    calibration vector (log content-free probabilities) and the demonstration pool."""

    task: Task
    template_name: str
    template_text: str
    label_words: dict[str, list[str]]
    word_ids: list[list[int]]
    mode: str
    kind: str
    max_length: int
    calibration: list[float] | None = None
    demonstrations: dict | None = None  # {"config": DemonstrationConfig fields, "train": [...], "seed": n}
    # the weights' precision when the state was scored (lmbff.precision); states from before 0.3: fp32
    precision: str = "fp32"
    # words, prototype or words+prototype (lmbff.prototypes); the prototypes' config when they score
    verbalizer: str = "words"
    prototypes: dict | None = None
    # {"label": the out-of-scope label, **AbstainRule fields}: the state abstains as its run chose on dev
    abstain: dict | None = None
    # a multi-label task's per-label thresholds chosen on dev (lmbff.multi_label.LabelThresholds)
    thresholds: dict | None = None

    @classmethod
    def of(cls, prompt_model, task: Task, demonstrations=None, seed: int = 0) -> ScoringSpec:
        """The spec of a PromptModel as it scores now (with its calibration, if any)."""
        calibration = prompt_model.calibration
        demos = None
        if demonstrations is not None:
            demos = {
                "config": asdict(demonstrations.config),
                "train": [
                    {"fields": e.fields, "label": e.label, "source": e.source} for e in demonstrations.train
                ],
                "seed": seed,
            }
        return cls(
            task=task,
            template_name=prompt_model.template.name,
            template_text=prompt_model.template.text,
            label_words=prompt_model.verbalizer.to_dict(),
            word_ids=[list(ids) for ids in prompt_model.words.word_ids],
            mode=prompt_model.mode,
            kind=prompt_model.kind,
            max_length=prompt_model.encoder.max_length,
            calibration=None if calibration is None else [float(v) for v in calibration.tolist()],
            demonstrations=demos,
            precision=precision_of(prompt_model.base_lm),
            verbalizer=prompt_model.verbalizer_kind,
            prototypes=None if prompt_model.prototypes is None else asdict(prompt_model.prototypes.config),
        )

    def to_dict(self) -> dict:
        data = asdict(self)
        data["task"] = self.task.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict) -> ScoringSpec:
        values = dict(data)
        values["task"] = Task.from_dict(values["task"])
        return cls(**values)

    def prompt_model(self, loaded, where: str = "<state>"):
        """A PromptModel that scores exactly as the state was scored when saved.

        Raises:
            StateError: the label words tokenize differently on this base (another tokenizer).
        """
        from .model import PromptModel

        template = Template(self.template_text, name=self.template_name, location=TemplateLocation(where))
        model = PromptModel(
            loaded.model,
            loaded.tokenizer,
            template,
            Verbalizer(self.label_words, self.task.labels),
            kind=loaded.kind,
            max_length=self.max_length,
            field_limits=self.task.field_limits,
            truncate_side=self.task.truncate_side,
            mode=self.mode,
        )
        model.task = self.task
        if self.verbalizer != "words":  # untrained until the state's tensors are attached
            model.use_prototypes(self.verbalizer, PrototypeConfig(**(self.prototypes or {})))
        now = [list(ids) for ids in model.words.word_ids]
        if now != self.word_ids:
            raise StateError(
                f"{where}: the label words {self.label_words} tokenize to {now} on {loaded.name}, "
                f"but to {self.word_ids} on the model the state was trained on"
            )
        if self.calibration is not None:
            model.calibration = torch.tensor(self.calibration, dtype=torch.float32)
        return model

    def label_thresholds(self):
        """The per-label thresholds a multi-label state decides with (the default where it saved none);
        None for other tasks."""
        if not self.task.multi_label:
            return None
        from .multi_label import LabelThresholds

        return (
            LabelThresholds.from_dict(self.thresholds)
            if self.thresholds
            else LabelThresholds.default(self.task)
        )

    def demonstration_pool(self):
        """The Demonstrations the state was trained with (None when it used none)."""
        if self.demonstrations is None:
            return None
        from .data import Example
        from .demonstrations import DemonstrationConfig, Demonstrations

        train = [Example(t["fields"], t["label"], t.get("source", "")) for t in self.demonstrations["train"]]
        return Demonstrations(train, self.task, DemonstrationConfig(**self.demonstrations["config"]))


def base_identity(loaded) -> dict:
    """What a state records of its base model: name, local folder, kind and fingerprint."""
    return {
        "name": loaded.name,
        "path": loaded.path,
        "kind": loaded.kind,
        "fingerprint": dict(loaded.fingerprint),
    }


def save_state(
    folder: str | os.PathLike,
    tensors: dict[str, torch.Tensor],
    tuning: TuningConfig | None,
    experiment: dict,
    *,
    scoring: ScoringSpec | None = None,
    base: dict | None = None,
    examples: dict[str, torch.Tensor] | None = None,
) -> None:
    """Write a state atomically: the tensors first, the config (whose presence marks it complete) last.

    ``scoring`` and ``base`` make it self-contained; without them the state can be attached to a model
    by hand (:meth:`TrainedState.attach`) but not scored on its own. ``examples``: the example memory
    (``features``, ``labels``) a prototype state keeps for adding classes later (:mod:`lmbff.incremental`)."""
    from safetensors.torch import save

    folder = Path(folder)
    atomic_write_bytes(folder / WEIGHTS, save({n: t.detach().contiguous() for n, t in tensors.items()}))
    if examples is not None:
        atomic_write_bytes(folder / EXAMPLES, save({n: t.detach().contiguous() for n, t in examples.items()}))
    config = {
        "format": STATE_FORMAT,
        "lmbff_version": __version__,
        "backend": None if tuning is None else tuning.to_dict(),
        "experiment": experiment,
        "scoring": None if scoring is None else scoring.to_dict(),
        "base_model": base,
    }
    atomic_write_json(folder / CONFIG, config)


@dataclass
class TrainedState:
    folder: Path
    tuning: TuningConfig | None  # None: nothing trained (a saved zero-shot classifier)
    experiment: dict
    tensors: dict[str, torch.Tensor]
    scoring: ScoringSpec | None = None
    base: dict | None = None
    version: str = ""
    legacy_task: tuple[str, str | None, int] | None = field(default=None, repr=False)
    # the example memory (features, labels) of a prototype state, when it was saved with one
    examples: dict[str, torch.Tensor] | None = field(default=None, repr=False)

    @classmethod
    def load(cls, folder: str | os.PathLike) -> TrainedState:
        """Read a state folder (never unpickles: safetensors and JSON only).

        Raises:
            StateError: files missing or unreadable, or a format-1 state whose task file cannot be
                verified (the message says how to re-save it).
        """

        folder = Path(folder)
        for name in (CONFIG, WEIGHTS):
            if not (folder / name).is_file():
                raise StateError(f"{folder}: no {name}; a state folder is a run's state/ (from lmbff train)")
        try:
            config = json.loads((folder / CONFIG).read_text())
            tuning = config_from_dict(config["backend"]) if config["backend"] is not None else None
            experiment = config["experiment"]
            fmt = config.get("format", 1)
            scoring = ScoringSpec.from_dict(config["scoring"]) if config.get("scoring") else None
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
            raise StateError(f"{folder / CONFIG}: not a state config ({error})") from error
        if fmt > STATE_FORMAT:
            raise StateError(
                f"{folder}: state format {fmt} is newer than this lmbff reads ({STATE_FORMAT}); "
                f"it was saved by lmbff {config.get('lmbff_version')}: upgrade lmbff"
            )
        legacy = legacy_scoring(folder, experiment) if fmt == 1 else None
        examples = read_safetensors(str(folder / EXAMPLES)) if (folder / EXAMPLES).is_file() else None
        return cls(
            folder,
            tuning,
            experiment,
            read_safetensors(str(folder / WEIGHTS)),
            scoring,
            config.get("base_model"),
            str(config.get("lmbff_version", "0.1.0")),
            legacy,
            examples,
        )

    # ---- the base model ------------------------------------------------------------------------
    def check_base(self, loaded) -> None:
        """Raises StateError when ``loaded`` is not the base model this state was trained on."""
        if not self.base:
            return
        saved = self.base.get("fingerprint") or {}
        now = loaded.fingerprint or {}
        differ = [key for key in sorted(set(saved) | set(now)) if saved.get(key) != now.get(key)]
        if differ:
            raise StateError(
                f"{self.folder}: trained on base model {self.base.get('name')!r} "
                f"(fingerprint {_short(saved)}), refused on {loaded.name!r} (fingerprint {_short(now)}): "
                f"their {', '.join(differ)} differ. Load it onto the model it was trained on"
            )

    def load_base(self, model: str | None = None, precision: str | None = None):
        """The base model to score on: ``model`` when given, else the folder the state was trained
        from (when it still exists), else the name it was loaded by; in ``precision``, by default the
        one the state was scored in (so its scores are the run's, bit for bit)."""
        from .pretrained import load_model

        name, kind = self.base_name(model)
        loaded = load_model(name, kind=kind, precision=precision or self.precision)
        self.check_base(loaded)
        return loaded

    @property
    def precision(self) -> str:
        """The precision the state was scored in (fp32 for states saved before precisions existed)."""
        return self.scoring.precision if self.scoring is not None else "fp32"

    def base_name(self, model: str | None = None) -> tuple[str, str | None]:
        """(name or folder, kind) of the base model to load: see :meth:`load_base`."""
        if model is not None:  # its own kind; the fingerprint then says whether it is the right base
            return model, None
        if self.base and self.base.get("path") and Path(self.base["path"]).is_dir():
            name = self.base["path"]
        elif self.base:
            name = self.base["name"]
        else:
            settings = self.experiment.get("classifier", self.experiment)
            name = settings.get("model")
        return name, (self.base or {}).get("kind") or self.experiment.get("model_kind")

    @property
    def seed(self) -> int:
        """The seed its run scored with (demonstration sampling) and trained with."""
        if self.scoring is not None and self.scoring.demonstrations is not None:
            return int(self.scoring.demonstrations["seed"])
        classifier = self.experiment.get("classifier") or {}
        training = self.experiment.get("training") or classifier.get("training") or {}
        return int(training.get("seed", (classifier.get("params") or {}).get("seed", 42)))

    def log_scores(self, scorer, examples: list, progress: bool | str = False, then=None):
        """Class log-scores (N, C) of ``examples`` as the state's run scored (its demonstrations, seed and
        batch size), with the state attached to ``scorer``'s base for the scoring only; ``then(demos,
        seed, log_scores)`` runs while it is still attached."""
        from .model import SCORING_BATCH_SIZE

        demos = self.scoring.demonstration_pool() if self.scoring is not None else None
        if demos is None and self.experiment.get("method") == "prompt-demos":  # a format-1 state
            demos = legacy_demonstrations(self.experiment, scorer.task)
        attached = self.attach(scorer)
        try:
            log_scores = scorer.predict_log_scores(
                examples,
                batch_size=SCORING_BATCH_SIZE,
                demonstrations=demos,
                seed=self.seed,
                progress=progress,
            )
            if then is not None:
                then(demos, self.seed, log_scores)
        finally:
            attached.detach()
        return log_scores

    def prompt_model(self, loaded):
        """A PromptModel on ``loaded`` that scores as this state was scored (not yet attached).

        Raises:
            StateError: another base model, or a state without scoring information.
        """
        self.check_base(loaded)
        if self.scoring is not None:
            return self.scoring.prompt_model(loaded, str(self.folder / CONFIG))
        if self.legacy_task is None:
            raise StateError(f"{self.folder}: the state records no scoring (template, label words)")
        from .model import PromptModel

        task_file, prompt, max_length = legacy_prompt(self.legacy_task)
        return PromptModel.for_task(
            loaded.model, loaded.tokenizer, task_file.task, prompt, kind=loaded.kind, max_length=max_length
        )

    def attach(self, scorer) -> AttachedState:
        """Put this state on the scorer's (frozen) language model. Raises StateError when the tensors
        do not match what the backend trains on this model (another base model, another config).

        The base's own tensors that the state replaces (norms for ln, biases for bitfit, everything for
        full) are copied first so that ``detach`` can restore them: for ``full`` that is a second copy
        of the model in memory."""
        tensors, prototype_tensors = split_prototype_tensors(self.tensors)
        prototypes = getattr(scorer, "prototypes", None)
        if prototype_tensors or prototypes is not None:  # the scorer's own, not the base's: set, not kept
            if prototypes is None:
                raise StateError(f"{self.folder}: the state holds prototypes, the scorer scores by words")
            try:
                prototypes.load_named_state(prototype_tensors, str(self.folder))
            except ValueError as exc:
                raise StateError(str(exc)) from None
        if self.tuning is None:  # a zero-shot state: nothing trained, nothing to put on the base
            return AttachedState(scorer, {})
        model = scorer.base_lm
        base = {name: p for name, p in model.named_parameters()}
        dtype = rest_dtype(model)
        try:
            self.tuning.apply(model)
            self.tuning.prepare(scorer)
        except BaseException:  # a method that failed half-way must not leave its modules on a shared base
            AttachedState(scorer, {}).detach()
            raise
        params = dict(model.named_parameters())
        trained = {name for name, p in params.items() if p.requires_grad}
        attached = AttachedState(scorer, {})
        if set(tensors) != trained:
            attached.detach()
            extra, missing = sorted(set(tensors) - trained), sorted(trained - set(tensors))
            raise StateError(
                f"{self.folder}: the state does not fit {type(model).__name__} with backend "
                f"{self.tuning.to_dict().get('backend')!r}: {len(extra)} saved tensors it does not have "
                f"({', '.join(extra[:3])}), {len(missing)} it trains that are not saved "
                f"({', '.join(missing[:3])}); "
                "is this the base model the state was trained on?"
            )
        with torch.no_grad():
            for name, tensor in tensors.items():
                p = params[name]
                if p.shape != tensor.shape:
                    attached.detach()
                    raise StateError(
                        f"{self.folder}: {name} has shape {tuple(tensor.shape)}, the model's {tuple(p.shape)}"
                    )
                if name in base:
                    attached.originals[name] = p.detach().clone()
                p.copy_(tensor.to(p.dtype))
        for p in model.parameters():
            p.requires_grad_(False)
        to_rest(model, dtype)  # what a backend added, in the base's precision (as after training)
        return attached


def _short(fingerprint: dict) -> str:
    return ", ".join(f"{k}={v[:8]}" for k, v in sorted(fingerprint.items())) or "none recorded"


class AttachedState:
    def __init__(self, scorer, originals: dict[str, torch.Tensor]):
        self.scorer, self.originals = scorer, originals

    def detach(self) -> None:
        """Restore the base model's own tensors and remove everything the backend added."""
        model = self.scorer.base_lm
        params = dict(model.named_parameters())
        with torch.no_grad():
            for name, tensor in self.originals.items():
                params[name].copy_(tensor)
        self.originals = {}
        detach_modules(model)
        self.scorer.encoder.virtual_tokens = 0


def upgrade_legacy_state(
    folder: str | os.PathLike, task: str | os.PathLike, model: str | None = None
) -> Path:
    """Re-save a format-1 state as a self-contained one, taking its template and label words from
    ``task`` (the task file it was trained with: the caller vouches for that) and its base model's
    fingerprint from ``model`` (default: the model it names). Returns the config path.

    Raises:
        StateError: the folder is not a format-1 state, or its tensors do not fit the model.
    """
    from .pretrained import load_model

    folder = Path(folder)
    try:
        config = json.loads((folder / CONFIG).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise StateError(f"{folder}: no readable {CONFIG} ({exc})") from None
    if config.get("format", 1) != 1:
        raise StateError(f"{folder}: already a self-contained state (format {config['format']})")
    experiment = config["experiment"]
    settings = experiment.get("classifier", experiment)
    task_file = load_task_file(find_task_file(str(task)))
    prompt = task_file.prompt(settings.get("template"))
    loaded = load_model(model or settings["model"], kind=experiment.get("model_kind"))
    from .model import PromptModel

    scorer = PromptModel.for_task(
        loaded.model,
        loaded.tokenizer,
        task_file.task,
        prompt,
        kind=loaded.kind,
        max_length=int(settings.get("max_length", 128)),
    )
    tensors_state = TrainedState(
        folder, config_from_dict(config["backend"]), experiment, _load_tensors(folder), version="0.1.0"
    )
    tensors_state.attach(scorer).detach()  # the tensors fit this model, or StateError
    demos = legacy_demonstrations(experiment, task_file.task)
    seed = int((settings.get("training") or {}).get("seed", 42))
    spec = ScoringSpec.of(scorer, task_file.task, demos, seed)
    config.update(
        {
            "format": STATE_FORMAT,
            "lmbff_version": __version__,
            "scoring": spec.to_dict(),
            "base_model": base_identity(loaded),
        }
    )
    atomic_write_json(folder / CONFIG, config)
    return folder / CONFIG


def _load_tensors(folder: Path) -> dict[str, torch.Tensor]:

    return read_safetensors(str(folder / WEIGHTS))
