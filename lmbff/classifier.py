"""An estimator over the same objects: ``fit``, ``predict``, ``predict_proba``, ``save``, ``load``.

    clf = PromptClassifier("SST-2", backend="ln", max_steps=100)
    clf.fit(["a gem", "a mess", ...], ["1", "0", ...])
    clf.predict(["what a film"])          # -> ["1"]
    clf.save("my-sst2")                   # the trained state only (safetensors + JSON)
    PromptClassifier.load("my-sst2").predict_proba(["what a film"])

Inputs are texts (one-field tasks), tuples (two-field tasks), field dicts, or :class:`Example` s.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, fields

import numpy as np

from prompts.library import load_task

from .data import Example
from .demonstrations import DemonstrationConfig, Demonstrations
from .model import PromptModel, regression_prediction
from .pretrained import DEFAULT_MODEL, load_model
from .state import TrainedState, save_state
from .train import Trainer, TrainingArguments
from .tuning import make_config


class PromptClassifier:
    def __init__(
        self,
        task: str,
        model: str = DEFAULT_MODEL,
        *,
        template: str | None = None,
        backend: str = "full",
        backend_options: dict | None = None,
        demonstrations: bool = False,
        max_length: int = 128,
        loaded=None,
        **training,
    ):
        """``training``: any :class:`TrainingArguments` field (max_steps, learning_rate, seed, ...).

        Raises:
            TypeError: an unknown training argument. KeyError: an unknown task, template or backend.
        """
        known = {f.name for f in fields(TrainingArguments)}
        unknown = set(training) - known
        if unknown:
            raise TypeError(f"unknown training arguments {sorted(unknown)}; known: {sorted(known)}")
        self.task_name, self.model_name, self.template = task, model, template
        self.task_file = load_task(task)
        self.task = self.task_file.task
        self.prompt = self.task_file.prompt(template)
        self.backend, self.backend_options = backend, dict(backend_options or {})
        self.tuning = make_config(backend, self.backend_options)
        self.use_demonstrations, self.max_length = demonstrations, max_length
        self.args = TrainingArguments(**training)
        self.loaded = loaded or load_model(model)
        self.scorer = PromptModel.for_task(
            self.loaded.model,
            self.loaded.tokenizer,
            self.task,
            self.prompt,
            kind=self.loaded.kind,
            max_length=max_length,
        )
        self.demonstrations: Demonstrations | None = None
        self._train: list[Example] = []

    def _examples(self, inputs, labels=None) -> list[Example]:
        names = self.task.fields
        out = []
        for i, item in enumerate(inputs):
            if isinstance(item, Example):
                out.append(item)
                continue
            if isinstance(item, str):
                values = (item,)
            elif isinstance(item, dict):
                values = tuple(item[name] for name in names)
            else:
                values = tuple(item)
            if len(values) != len(names):
                raise ValueError(
                    f"input {i} has {len(values)} fields; task {self.task.name} reads {list(names)}"
                )
            label = None if labels is None else str(labels[i])
            out.append(Example(dict(zip(names, values, strict=True)), label, source=f"input {i}"))
        return out

    def fit(
        self, inputs, labels: Sequence, dev_inputs=None, dev_labels: Sequence | None = None
    ) -> PromptClassifier:
        """Tune on the examples (best checkpoint on dev when given). Returns self."""
        train = self._examples(inputs, labels)
        dev = self._examples(dev_inputs, dev_labels) if dev_inputs is not None else None
        self._train = train
        if self.use_demonstrations:
            self.demonstrations = Demonstrations(train, self.task, DemonstrationConfig())
        trainer = Trainer(self.scorer, self.task, self.tuning, self.args, train, dev, self.demonstrations)
        trainer.train(progress=False)
        self._trainer = trainer
        return self

    def predict_proba(self, inputs) -> np.ndarray:
        """Label probabilities (N, labels), in the task's label order."""
        scores = self.scorer.predict_log_scores(
            self._examples(inputs), demonstrations=self.demonstrations, seed=self.args.seed
        )
        return np.exp(scores)

    def predict(self, inputs) -> list:
        probabilities = self.predict_proba(inputs)
        if self.task.is_regression:
            return regression_prediction(np.log(probabilities), self.task.value_range).tolist()
        return [self.task.labels[i] for i in probabilities.argmax(axis=1)]

    def save(self, folder: str | os.PathLike) -> None:
        """Only the trained parameters, and the configuration that rebuilds the classifier."""
        if not hasattr(self, "_trainer"):
            raise RuntimeError("fit the classifier before saving it")
        settings = {
            "task": self.task_name,
            "model": self.model_name,
            "template": self.template,
            "backend": self.backend,
            "backend_options": self.backend_options,
            "max_length": self.max_length,
            "training": asdict(self.args),
            "demonstrations": self.use_demonstrations,
            "train": [{"fields": e.fields, "label": e.label} for e in self._train]
            if self.use_demonstrations
            else [],
        }
        save_state(
            folder, self._trainer.trainable_state(), self._trainer.saved_tuning, {"classifier": settings}
        )

    @classmethod
    def load(cls, folder: str | os.PathLike, model: str | None = None, loaded=None) -> PromptClassifier:
        """A saved classifier on a (possibly shared, already loaded) frozen base model."""
        state = TrainedState.load(folder)
        settings = state.experiment.get("classifier")
        if settings is None:
            raise ValueError(
                f"{folder}: a run's state, not a saved PromptClassifier; use lmbff predict --state"
            )
        clf = cls(
            settings["task"],
            model or settings["model"],
            template=settings["template"],
            backend=settings["backend"],
            backend_options=settings["backend_options"],
            demonstrations=settings["demonstrations"],
            max_length=settings["max_length"],
            loaded=loaded,
            **settings["training"],
        )
        clf.attached = state.attach(clf.scorer)
        if settings["demonstrations"]:
            clf._train = [Example(t["fields"], t["label"]) for t in settings["train"]]
            clf.demonstrations = Demonstrations(clf._train, clf.task, DemonstrationConfig())
        return clf
