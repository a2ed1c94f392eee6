"""A scikit-learn estimator over the toolkit's objects.

    clf = PromptClassifier("SST-2")                     # the 'fast' recipe: LoRA, 1e-3, 32 steps
    clf.fit(["a gem", "a mess", ...], [1, 0, ...])     # labels: any values whose str() is a task label
    clf.predict(["what a film"])                        # -> array([1])
    clf.save("my-sst2")                                 # self-contained: safetensors + JSON
    PromptClassifier.load("my-sst2").predict_proba(["what a film"])

    PromptClassifier.zero_shot(labels=["World", "Sports"], template="{{ text }} Topic: {{ mask }}.")

It follows scikit-learn's estimator contract (parameters stored as given, ``get_params``/``set_params``,
``clone``, ``classes_``, ``score``, tags), so ``Pipeline``, ``cross_val_score`` and ``GridSearchCV``
take it. The base model is shared, never copied: every classifier (and every clone) naming the same
model scores on one loaded copy, onto which each attaches its trained state when it predicts and from
which it detaches when another one needs the base (so fitting one never changes another's scores).
"""

from __future__ import annotations

import json
import os
import warnings
import weakref
from dataclasses import asdict, replace
from pathlib import Path
from typing import Protocol

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from prompts.library import PromptSpec, TaskFile, load_task, task_file_from_labels
from prompts.template import Template, TemplateLocation

from .config import DEFAULT_PRECISION, PrototypeConfig, check_precision, check_verbalizer
from .data import likely_mistakes
from .defaults import preset_min_epochs, resolve
from .errors import ConfigError
from .inputs import LabelCodec, to_examples, to_label_list, to_label_sets
from .logs import log, shown
from .model import SCORING_BATCH_SIZE
from .pretrained import DEFAULT_MODEL, LoadedModel, load_model
from .state import FINETUNE_STATE, AttachedState, ScoringSpec, TrainedState, base_identity, save_state
from .train import TrainingArguments

_SHARED_BASES: dict[tuple, LoadedModel] = {}
DEFAULT_TEMPLATE_TEXT = "{{ text }} It was {{ mask }}."  # LM-BFF's manual sentiment template


def shared_base(
    model: str | LoadedModel, kind: str | None = None, precision: str | None = None
) -> LoadedModel:
    """The one loaded copy of ``model`` in this process for a precision (default auto; loaded on first
    use). A base loaded without a kind serves a later call that names the kind it was detected as."""
    if isinstance(model, LoadedModel):
        return model
    from .precision import resolve_precision

    resolved = resolve_precision(precision or DEFAULT_PRECISION)
    key = (model, kind, resolved)
    if key not in _SHARED_BASES:
        detected = _SHARED_BASES.get((model, None, resolved))
        if kind is not None and detected is not None and detected.kind == kind:
            _SHARED_BASES[key] = detected
        else:
            _SHARED_BASES[key] = load_model(model, kind=kind, precision=resolved)
    return _SHARED_BASES[key]


class BaseHolder(Protocol):
    """What may hold a shared base: an object whose trained state is attached to it and that can take
    that state off again (a fitted :class:`PromptClassifier`)."""

    def _deactivate(self) -> None: ...


class BaseLeases:
    """Which holder's trained state is on each shared base now. Every clone of a classifier scores on
    one loaded base (never copied); one holder at a time has its state attached, and a classifier that
    predicts first takes the base from whoever held it. Bases are keyed by identity (a LoadedModel is
    not hashable), with a weak reference so that a new object at a freed address is never mistaken for
    an old base."""

    def __init__(self) -> None:
        self._held: dict[int, tuple[weakref.ref, BaseHolder]] = {}

    def holder(self, base: LoadedModel) -> BaseHolder | None:
        entry = self._held.get(id(base))
        if entry is None or entry[0]() is not base:
            return None
        return entry[1]

    def take(self, base: LoadedModel, holder: BaseHolder) -> None:
        self._held[id(base)] = (weakref.ref(base), holder)

    def give_back(self, base: LoadedModel, holder: BaseHolder) -> None:
        if self.holder(base) is holder:
            del self._held[id(base)]


BASE_LEASES = BaseLeases()


class PromptClassifier(ClassifierMixin, BaseEstimator):
    """Prompt-based few-shot classification as a scikit-learn estimator.

    Parameters:
        task: a task name (``templates/<task>.yaml``, also looked up in ``./templates``), a path to a
            task YAML, or a TaskFile (:meth:`zero_shot` builds one from labels and a template).
        model: the base model: a name or folder, or an already loaded ``LoadedModel`` (shared).
        template: the template name in the task file (default: its default); without a task file
            (``labels=``), the template's Jinja text (default ``"{{ text }} It was {{ mask }}."``).
        labels, label_words: a task without a YAML file, instead of ``task``: its labels, and their
            words (a dict from label to word(s), or a list in label order; default: the labels
            themselves), as :meth:`zero_shot` takes them; the fields are the template's variables.
        method: ``prompt`` (tune on the examples given to ``fit``) or ``zero-shot`` (no training).
        backend, learning_rate, max_steps, eval_every: the tuning recipe; None takes the ``fast`` preset
            (``preset="lmbff"``: LM-BFF's full fine-tuning, 1e-5, 1000 steps). A backend without a
            learning rate trains at the preset's rate for it (fast: ln 1e-2, lora 1e-3), else its own.
        calibrate: contextual calibration (Zhao et al. 2021); ``"auto"``: on for zero-shot, off after
            tuning (LM-BFF does not calibrate tuned models).
        columns: renames input columns to task fields (``{"sentence": "text_a"}``).
        precision: the weights' precision, ``"fp32"``, ``"bf16"`` or ``"auto"`` (bf16 where the hardware
            multiplies it natively; :mod:`lmbff.precision`); None: auto, or the precision of a
            ``LoadedModel`` given as ``model``.
        verbose: progress bars and the training plan (off: ``verbose=False``).
        verbalizer: how classes are scored after tuning: ``"words"`` (the label words), ``"prototype"``
            (a learned vector per class in the slot's hidden space; one forward pass per example whatever
            the number of classes) or ``"words+prototype"`` (both); None: the template's own, else words
            (:mod:`lmbff.prototypes`).
        prototype_options: :class:`lmbff.config.PrototypeConfig` fields (``init``, ``learning_rate``,
            ``scale``).
        out_of_scope: the label value that means "none of these classes" (CLINC150's ``"oos"``). Rows
            with it are not trained on; dev rows with it (``fit(..., X_dev=, y_dev=)``) set the confidence
            below which ``predict`` abstains and returns this value (:mod:`lmbff.out_of_scope`).
        mode: the scoring mode (:mod:`lmbff.scoring`: ``mask``, ``next_token``, ``sequence``, or one
            registered by a plugin); None: chosen from the model kind and the template.
        multi_label: with ``labels=``, several labels per input (a task file says ``multi_label: true``
            itself). ``fit`` then takes one list of labels per input, or a binary indicator matrix (one
            column per label, in ``labels`` order: ``MultiLabelBinarizer(classes=labels)``), and
            ``predict`` answers in the form it was fitted with. Each label is decided by its own
            threshold, chosen on ``X_dev``/``y_dev`` (``thresholds_``; :mod:`lmbff.multi_label`).
        multi_label_loss: a multi-label task's loss, ``"softmax"`` or ``"binary"``
            (:class:`TrainingArguments`).
        The rest are :class:`TrainingArguments` fields.
    """

    def __init__(
        self,
        task: str | TaskFile | None = None,
        model: str | LoadedModel = DEFAULT_MODEL,
        *,
        template: str | None = None,
        labels: list | None = None,
        label_words: dict | list | None = None,
        method: str = "prompt",
        preset: str | None = None,
        backend: str | None = None,
        backend_options: dict | None = None,
        demonstrations: bool = False,
        calibrate: bool | str = "auto",
        max_length: int = 128,
        columns: dict | None = None,
        verbose: bool = True,
        max_steps: int | None = None,
        learning_rate: float | None = None,
        eval_every: int | None = None,
        batch_size: int = 8,
        warmup_ratio: float = 0.0,
        weight_decay: float = 0.0,
        max_grad_norm: float = 1.0,
        eval_batch_size: int = 32,
        seed: int = 42,
        gradient_accumulation_steps: int = 1,
        min_epochs: float | None = None,
        model_kind: str | None = None,
        precision: str | None = None,
        verbalizer: str | None = None,
        prototype_options: dict | None = None,
        out_of_scope=None,
        mode: str | None = None,
        multi_label: bool = False,
        multi_label_loss: str = "softmax",
    ):
        self.task = task
        self.model = model
        self.template = template
        self.labels = labels
        self.label_words = label_words
        self.method = method
        self.preset = preset
        self.backend = backend
        self.backend_options = backend_options
        self.demonstrations = demonstrations
        self.calibrate = calibrate
        self.max_length = max_length
        self.columns = columns
        self.verbose = verbose
        self.max_steps = max_steps
        self.learning_rate = learning_rate
        self.eval_every = eval_every
        self.batch_size = batch_size
        self.warmup_ratio = warmup_ratio
        self.weight_decay = weight_decay
        self.max_grad_norm = max_grad_norm
        self.eval_batch_size = eval_batch_size
        self.seed = seed
        self.gradient_accumulation_steps = gradient_accumulation_steps
        self.min_epochs = min_epochs
        self.model_kind = model_kind
        self.precision = precision
        self.verbalizer = verbalizer
        self.prototype_options = prototype_options
        self.out_of_scope = out_of_scope
        self.mode = mode
        self.multi_label = multi_label
        self.multi_label_loss = multi_label_loss

    # ---- scikit-learn plumbing -----------------------------------------------------------------
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.non_deterministic = False
        return tags

    # ---- zero-shot without a task file ------------------------------------------------------------
    @classmethod
    def zero_shot(
        cls,
        labels: list,
        template: str = DEFAULT_TEMPLATE_TEXT,
        label_words: dict | list | None = None,
        *,
        model: str | LoadedModel = DEFAULT_MODEL,
        calibrate: bool = True,
        name: str = "zero-shot",
        multi_label: bool = False,
        **params,
    ) -> PromptClassifier:
        """A calibrated zero-shot classifier from labels and a template, ready to predict (no YAML).

        ``label_words`` default to the labels themselves; a dict maps a label to its word(s), a list
        gives them in label order. Labels keep their type in ``classes_`` and ``predict``.

        Raises:
            TaskFileError / TemplateError: no or repeated labels, a template without exactly one
                ``{{ mask }}`` or without a field, label words for unknown labels or empty ones.
        """
        task_file = task_file_from_labels(
            [str(label) for label in labels], template, label_words, name=name, multi_label=multi_label
        )
        clf = cls(task_file, model, method="zero-shot", calibrate=calibrate, **params)
        return clf.fit(None, [[label] for label in labels] if multi_label else list(labels))

    # ---- fitting ---------------------------------------------------------------------------------
    def _task_file(self) -> TaskFile:
        if self.labels is not None:
            if self.task is not None:
                raise ConfigError("give task= (a task file) or labels= (a task without one), not both")
            return task_file_from_labels(
                [str(label) for label in self.labels],
                self.template or DEFAULT_TEMPLATE_TEXT,
                self.label_words,
                name="few-shot",
                multi_label=bool(self.multi_label),
            )
        if self.label_words is not None:
            raise ConfigError("label_words= goes with labels=; a task file names its own label words")
        if self.multi_label:
            raise ConfigError("multi_label= goes with labels=; a task file says multi_label: true itself")
        if isinstance(self.task, TaskFile):
            return self.task
        if not self.task:
            raise ConfigError(
                "no task: pass task='SST-2' (a name or a YAML path), or labels=[...] with a template "
                "(and label_words), or use zero_shot()"
            )
        return load_task(str(self.task))

    def _training_arguments(self, verbalizer: str | None = None) -> tuple[str, TrainingArguments]:
        """The recipe; ``verbalizer`` (the one the run scores with) picks the preset's prototype rate and
        epochs where it has them."""
        backend, learning_rate, max_steps, eval_every = resolve(
            self.preset, self.backend, self.learning_rate, self.max_steps, self.eval_every, verbalizer
        )
        args = TrainingArguments(
            max_steps=max_steps,
            batch_size=self.batch_size,
            learning_rate=learning_rate,
            eval_every=eval_every,
            warmup_ratio=self.warmup_ratio,
            weight_decay=self.weight_decay,
            max_grad_norm=self.max_grad_norm,
            eval_batch_size=self.eval_batch_size,
            seed=self.seed,
            gradient_accumulation_steps=self.gradient_accumulation_steps,
            min_epochs=preset_min_epochs(self.preset, self.max_steps, self.min_epochs, verbalizer),
            multi_label_loss=self.multi_label_loss,
        )
        return backend, args

    def _resolved_precision(self) -> str:
        """fp32 or bf16 for this estimator's backend on this machine (``precision`` None: the default)."""
        from .precision import resolve_precision

        backend = resolve(self.preset, self.backend, None, None, None)[0] if self.method == "prompt" else None
        return resolve_precision(self.precision or DEFAULT_PRECISION, backend=backend)

    def _validate(self) -> None:
        if self.method not in ("prompt", "zero-shot"):
            raise ConfigError(f"method must be 'prompt' or 'zero-shot', got {self.method!r}")
        if self.calibrate not in (True, False, "auto"):
            raise ConfigError(f"calibrate must be True, False or 'auto', got {self.calibrate!r}")
        if not isinstance(self.max_length, int) or self.max_length < 8:
            raise ConfigError(f"max_length must be an integer of at least 8, got {self.max_length!r}")
        if self.verbalizer is not None:
            check_verbalizer(self.verbalizer)
            if self.verbalizer != "words" and self.method != "prompt":
                raise ConfigError(
                    f"verbalizer={self.verbalizer!r} learns prototypes from training examples; "
                    "method='zero-shot' trains none"
                )
        if self.prototype_options is not None and not isinstance(self.prototype_options, dict):
            raise ConfigError(
                f"prototype_options must be a dict, got {type(self.prototype_options).__name__}"
            )
        prototypes = PrototypeConfig(**(self.prototype_options or {}))  # its checks, before the model loads
        if prototypes.activation == "sigmoid" and self.calibrate is True:
            raise ConfigError(
                "calibrate=True renormalises the classes' probabilities; sigmoid prototypes give each label "
                "its own (its threshold does what calibration would): leave calibrate='auto'"
            )
        if self.mode is not None:
            from .scoring import get_mode

            get_mode(self.mode)  # an unknown mode, before the model loads
        if self.precision is not None:
            check_precision(self.precision)
            if isinstance(self.model, LoadedModel) and self._resolved_precision() != self.model.precision:
                raise ConfigError(
                    f"precision={self.precision!r}, but the LoadedModel given as model is in "
                    f"{self.model.precision}: load it in that precision (load_model(..., precision=...)) "
                    "or leave precision=None"
                )

    def _labels(self, task, examples, y):
        """Attach labels to examples (task labels) and return the codec; for regression, floats; for a
        multi-label task, each example's tuple of labels (the form given is kept in ``label_form_``)."""
        if task.multi_label:
            sets, form, given = to_label_sets(y, len(examples), task.labels, task.allow_empty)
            self.label_form_ = form
            return LabelCodec(task.labels, given), [
                replace(e, label=v) for e, v in zip(examples, sets, strict=True)
            ]
        values = to_label_list(y, len(examples))
        if task.is_regression:
            try:
                floats = [float(v) for v in values]
            except (TypeError, ValueError):
                bad = next(i for i, v in enumerate(values) if not _is_number(v))
                raise ConfigError(
                    f"input {bad}: field 'label' is {values[bad]!r}; expected a number"
                ) from None
            return None, [replace(e, label=v) for e, v in zip(examples, floats, strict=True)]
        codec = LabelCodec(task.labels, values)
        encoded = codec.encode(values)
        return codec, [replace(e, label=v) for e, v in zip(examples, encoded, strict=True)]

    def fit(self, X, y=None, *, X_dev=None, y_dev=None) -> PromptClassifier:
        """Tune on (X, y) and keep the best checkpoint on (X_dev, y_dev) when given; with
        ``method="zero-shot"`` nothing trains (X and y, when given, are only checked). Returns self.

        Everything is checked before the model loads: the task, the recipe, the inputs and the labels.

        Raises:
            InputError, ConfigError (both ValueError, and LmbffError): bad inputs, labels or parameters
                (the message names the row and the field); TypeError: inputs that are not a list.
        """
        with shown(self.verbose):  # the plan and notes (lmbff.logs), on stderr unless logging is set up
            return self._fit(X, y, X_dev=X_dev, y_dev=y_dev)

    def _fit(self, X, y=None, *, X_dev=None, y_dev=None) -> PromptClassifier:
        self._validate()
        task_file = self._task_file()
        task = task_file.task
        prompt = task_file.prompt(None if self.labels is not None else self.template)
        self._check_task(task)
        verbalizer = (self.verbalizer or prompt.verbalizer_kind) if self.method == "prompt" else "words"
        if self.method == "prompt":  # before the model loads
            PrototypeConfig(**(self.prototype_options or {})).check_activation(
                verbalizer, task.multi_label, task.name
            )
        backend, args = self._training_arguments(verbalizer)
        from .defaults import preset_backend_options
        from .tuning import make_config

        tuning = (
            make_config(backend, preset_backend_options(self.preset, backend, self.backend_options))
            if self.method == "prompt"
            else None
        )
        codec, train = self._fit_labels(task, X, y)
        dev, dev_outside, dev_values = None, [], []
        if X_dev is not None:
            examples, dev_values, dev_outside = self._in_scope(
                to_examples(X_dev, task.fields, self.columns), y_dev
            )
            _, dev = self._labels(task, examples, dev_values)
        if self.method == "prompt":
            for note in likely_mistakes(task, train, dev):
                warnings.warn(note, UserWarning, stacklevel=2)

        base = shared_base(self.model, self.model_kind, self._resolved_precision())
        _release(base)  # the base as loaded: no other classifier's state on it
        from .model import PromptModel

        scorer = PromptModel.for_task(
            base.model,
            base.tokenizer,
            task,
            prompt,
            kind=base.kind,
            max_length=self.max_length,
            mode=self.mode,
        )
        if self.method == "prompt":
            scorer.use_prototypes(verbalizer, PrototypeConfig(**(self.prototype_options or {})))
        demos = None
        if self.demonstrations and train:
            from .demonstrations import DemonstrationConfig, Demonstrations

            demos = Demonstrations(train, task, DemonstrationConfig())
        self.base_ = base
        self.prompt_model_ = scorer
        self.task_ = task
        self.demonstrations_ = demos
        self.state_ = None
        self.training_ = None
        self._attached: AttachedState | None = None
        self.memory_ = None
        if self.method == "prompt":
            self.state_, self.training_ = self._train(scorer, task, tuning, args, train, dev, demos, backend)
            if scorer.prototypes is not None and not task.multi_label:
                from .prototypes import example_memory

                self._activate()
                self.memory_ = example_memory(scorer, task, train)  # for partial_fit's new classes
        calibrate = self.calibrate if self.calibrate != "auto" else self.method == "zero-shot"
        if calibrate:
            self._activate()
            scorer.calibrate()
        self.classes_ = _as_array(codec.classes if not task.is_regression else list(task.labels))
        self.fit_seed_ = args.seed
        self.abstain_ = None
        if self.out_of_scope is not None:
            self.abstain_ = self._abstain_rule(dev, dev_values, dev_outside)
        self.thresholds_ = None
        if task.multi_label:
            self.label_form_ = getattr(self, "label_form_", "lists")
            self.thresholds_ = self._thresholds(task, dev)
        return self

    def _thresholds(self, task, dev):
        """A multi-label classifier's per-label thresholds: chosen on dev, else 0.5 each (said)."""
        from .multi_label import LabelThresholds, thresholds_on

        if not dev:
            warnings.warn(
                "a multi-label classifier fitted without X_dev/y_dev decides each label at probability "
                f"{LabelThresholds.default(task).thresholds[0]}; give dev rows to choose each label's own "
                "threshold",
                UserWarning,
                stacklevel=3,
            )
            return LabelThresholds.default(task)
        return thresholds_on(task, dev, self._probabilities(dev))

    def partial_fit(self, X, y, *, X_dev=None, y_dev=None, label_words=None) -> PromptClassifier:
        """Add the classes of ``y`` that the classifier does not know, learnt from these examples (rows
        of the new classes only), without forgetting the old ones (:mod:`lmbff.incremental`): the
        backbone's state and every old prototype stay as they are, each new class gets a prototype
        trained against the example memory kept since ``fit``. ``X_dev``/``y_dev`` (any class) choose
        the step. ``label_words``: the new classes' words (default: their names). Returns self.

        Raises:
            sklearn.exceptions.NotFittedError: before fit. ConfigError, InputError: no new class in
                ``y``, a row of an old class, a multi-label or words+prototype classifier; all before
                anything changes.
        """
        check_is_fitted(self, "prompt_model_")
        with shown(self.verbose):
            return self._add_classes(X, y, X_dev, y_dev, label_words)

    def _add_classes(self, X, y, X_dev, y_dev, label_words) -> PromptClassifier:
        import tempfile

        from .incremental import IncrementalConfig, add_classes
        from .state import TrainedState

        task = self.task_
        examples = to_examples(X, task.fields, self.columns)
        values = to_label_list(y, len(examples))
        known = [str(c) for c in self.classes_.tolist()]
        new = list(dict.fromkeys(str(v) for v in values if str(v) not in known))
        if not new:
            raise ConfigError(
                f"partial_fit adds classes: y holds none the classifier does not know ({known}); to train "
                "the known classes again, fit"
            )
        train = [replace(e, label=str(v)) for e, v in zip(examples, values, strict=True)]
        dev = []
        if X_dev is not None:
            dev_examples = to_examples(X_dev, task.fields, self.columns)
            dev_values = to_label_list(y_dev, len(dev_examples))
            dev = [replace(e, label=str(v)) for e, v in zip(dev_examples, dev_values, strict=True)]
        typed = {str(v): v for v in values}
        with tempfile.TemporaryDirectory(prefix="lmbff-classes-") as folder:
            state = TrainedState.load(self.save(Path(folder) / "old"))
            result = add_classes(
                state, self.base_, new, train, dev, label_words=label_words, config=IncrementalConfig(),
                progress=self.verbose,
            )  # fmt: skip
            experiment = json.loads(json.dumps(state.experiment))
            experiment["classifier"]["classes"] = [*self.classes_.tolist(), *(typed[label] for label in new)]
            experiment["phases"] = [*experiment.get("phases", []), result.phase()]
            save_state(
                Path(folder) / "new", result.tensors, state.tuning, experiment, scoring=result.scoring,
                base=state.base, examples=result.examples,
            )  # fmt: skip
            grown = type(self).load(Path(folder) / "new", loaded=self.base_)
        for name in ("prompt_model_", "task_", "state_", "classes_", "memory_", "thresholds_",
                     "demonstrations_", "fit_seed_", "abstain_", "_attached"):  # fmt: skip
            setattr(self, name, getattr(grown, name))
        self.training_ = {**(self.training_ or {}), "phases": experiment["phases"]}
        return self

    def _check_task(self, task) -> None:
        """What the task refuses with these parameters, before anything loads."""
        if task.multi_label:
            from .multi_label import check_multi_label_method

            check_multi_label_method(
                task, "prompt-demos" if self.demonstrations else self.method, self.out_of_scope
            )
        if self.out_of_scope is not None and str(self.out_of_scope) in task.labels:
            # its rows would be set apart from training, and a class would silently never be learned
            raise ConfigError(
                f"out_of_scope={self.out_of_scope!r} is one of the task's labels {list(task.labels)}"
            )

    def _fit_labels(self, task, X, y) -> tuple[LabelCodec, list]:
        """(the label codec, the training examples with their labels); zero-shot: the labels given,
        only checked (and a multi-label task's label form kept)."""
        train: list = []
        codec = LabelCodec(task.labels, None)
        if self.method == "prompt":
            if X is None or y is None:
                raise ConfigError("fit(X, y) needs examples and their labels (or method='zero-shot')")
            examples, values, _ = self._in_scope(to_examples(X, task.fields, self.columns), y)
            codec, train = self._labels(task, examples, values)
        elif y is not None and task.multi_label:  # zero-shot: the label form, and the labels checked
            count = len(y) if X is None else len(to_examples(X, task.fields, self.columns))
            given = to_label_sets(y, count, task.labels, task.allow_empty)
            self.label_form_, codec = given[1], LabelCodec(task.labels, given[2])
        elif y is not None:  # zero-shot: only to know the label values (and check them)
            values = to_label_list(y, len(y) if X is None else len(to_examples(X, task.fields, self.columns)))
            if not task.is_regression:
                codec = LabelCodec(task.labels, values)
                codec.encode(values)
        return codec, train

    def _in_scope(self, examples: list, y) -> tuple[list, list, list]:
        """(in-scope examples, their labels, out-of-scope examples): rows labelled ``out_of_scope``
        are set apart (never a class to train on)."""
        if self.out_of_scope is None:  # the labels as given (a multi-label indicator matrix stays one)
            return examples, y, []
        values = to_label_list(y, len(examples))
        inside = [i for i, v in enumerate(values) if v != self.out_of_scope]
        outside = [examples[i] for i, v in enumerate(values) if v == self.out_of_scope]
        return [examples[i] for i in inside], [values[i] for i in inside], outside

    def _abstain_rule(self, dev, dev_values, dev_outside):
        """The confidence threshold chosen on dev (in-scope and out-of-scope rows), or None with a
        warning when dev has no rows of one of the two kinds."""
        from .out_of_scope import OUT_OF_SCOPE, choose_rule

        if not dev or not dev_outside:
            warnings.warn(
                f"out_of_scope={self.out_of_scope!r}: no dev rows of both kinds (in-scope and "
                f"{self.out_of_scope!r}) to choose a threshold on; the classifier never abstains",
                UserWarning,
                stacklevel=3,
            )
            return None
        classes = self.classes_.tolist()
        rows = list(dev) + list(dev_outside)
        gold = [classes.index(v) for v in dev_values] + [OUT_OF_SCOPE] * len(dev_outside)
        similarities = None
        if self.prompt_model_.prototypes is not None:
            similarities = lambda: self._similarities(rows)  # noqa: E731
        return choose_rule(self._probabilities(rows), gold, similarities)

    def _train(self, scorer, task, tuning, args, train, dev, demos, backend):
        from .precision import rest_dtype, to_rest
        from .train import Trainer

        base_params = {name: p for name, p in scorer.base_lm.named_parameters()}
        dtype = rest_dtype(scorer.base_lm)
        trainer, originals = None, {}
        try:
            trainer = Trainer(scorer, task, tuning, args, train, dev, demos)
            originals = {
                name: base_params[name].detach().clone()
                for name, p in scorer.base_lm.named_parameters()
                if p.requires_grad and name in base_params
            }
            # logged whatever verbose says: verbose decides whether it is shown (lmbff.logs)
            log.info(
                f"PromptClassifier: {task.name}, {len(train)} examples; backend {backend} "
                f"({trainer.trainable:,} of {trainer.total:,} parameters train), learning rate "
                f"{args.learning_rate if args.learning_rate is not None else tuning.learning_rate}, "
                f"{args.max_steps} steps of batch {args.batch_size}"
            )
            result = trainer.train(progress=self.verbose)
            tensors = {name: t.detach().clone() for name, t in trainer.trainable_state().items()}
            state = TrainedState(Path("<memory>"), trainer.saved_tuning, {}, tensors)
        finally:
            # Whatever happened (a backend that fails half-way through adding its modules included),
            # the shared base goes back to what it was before training.
            AttachedState(scorer, originals).detach()
            for p in scorer.base_lm.parameters():
                p.requires_grad_(False)
            to_rest(scorer.base_lm, dtype)  # float32 master copies of a run that failed half-way too
        history = {
            "best_step": result.best_step,
            "best_dev": result.best_dev,
            "history": result.history,
            "seconds_per_step": result.seconds_per_step,
            "trainable_parameters": result.trainable_parameters,
        }
        return state, history

    # ---- the shared base -------------------------------------------------------------------------
    def _activate(self) -> None:
        """Put this classifier's trained state on the shared base (taking it from any other)."""
        if BASE_LEASES.holder(self.base_) is self:
            return
        _release(self.base_)
        if self.state_ is not None:
            self._attached = self.state_.attach(self.prompt_model_)
        BASE_LEASES.take(self.base_, self)

    def _deactivate(self) -> None:
        """Take this classifier's trained state off the shared base (:class:`BaseHolder`)."""
        if getattr(self, "_attached", None) is not None:
            self._attached.detach()
            self._attached = None
        BASE_LEASES.give_back(self.base_, self)

    def __getstate__(self):
        if hasattr(self, "prompt_model_"):  # a fitted one holds a model: its file format is save()
            raise TypeError("a fitted PromptClassifier is saved with .save(folder) (safetensors + JSON)")
        return super().__getstate__()

    # ---- predicting ------------------------------------------------------------------------------
    def predict_proba(self, X) -> np.ndarray:
        """Label probabilities (n, classes), columns in ``classes_`` order."""
        check_is_fitted(self, "prompt_model_")
        return self._probabilities(to_examples(X, self.task_.fields, self.columns))

    def _probabilities(self, examples: list) -> np.ndarray:
        self._activate()
        scores = self.prompt_model_.predict_log_scores(
            examples,
            batch_size=SCORING_BATCH_SIZE,
            demonstrations=self.demonstrations_,
            seed=self.fit_seed_,
            progress=self.verbose and f"{self.task_.name}: scoring",
        )
        return np.exp(scores.astype(np.float64))

    def prototype_similarities(self, X) -> np.ndarray:
        """Cosine similarity (n, classes) of each input's slot feature with each class prototype
        (``verbalizer`` prototype or words+prototype), columns in ``classes_`` order.

        Raises:
            ValueError: the classifier scores by label words only."""
        check_is_fitted(self, "prompt_model_")
        return self._similarities(to_examples(X, self.task_.fields, self.columns))

    def _similarities(self, examples: list) -> np.ndarray:
        self._activate()
        return self.prompt_model_.prototype_similarities(examples)  # classes_ is in the task's order

    def predict(self, X) -> np.ndarray:
        """Labels (in the type they were fitted with), or values for a regression task."""
        probabilities = self.predict_proba(X)
        if self.task_.is_regression:
            from .model import regression_prediction

            return regression_prediction(np.log(probabilities), self.task_.value_range)
        if self.task_.multi_label:
            chosen = self.thresholds_.decide(probabilities)
            if self.label_form_ == "indicator":
                return chosen.astype(int)
            classes = self.classes_.tolist()
            return [[classes[j] for j in np.flatnonzero(row)] for row in chosen]
        rule = getattr(self, "abstain_", None)
        if rule is None:
            return self.classes_[probabilities.argmax(axis=1)]
        chosen = rule.decide(probabilities, lambda: self.prototype_similarities(X))
        labels = self.classes_[np.maximum(chosen, 0)].astype(object)
        labels[chosen < 0] = self.out_of_scope
        return np.asarray(labels.tolist())

    def score(self, X, y, sample_weight=None) -> float:
        """Accuracy (classification) or R² (regression), as scikit-learn's mixins define them; for a
        multi-label task, subset accuracy (every label of an input right), as ``accuracy_score`` on
        indicator matrices is."""
        if getattr(self, "task_", None) is not None and self.task_.multi_label:
            from sklearn.metrics import accuracy_score

            from .multi_label import label_indicator

            gold = label_indicator(self.task_, to_label_sets(y, len(y), self.task_.labels, True)[0])
            predicted = self.thresholds_.decide(self.predict_proba(X))
            return float(accuracy_score(gold, predicted, sample_weight=sample_weight))
        if getattr(self, "task_", None) is not None and self.task_.is_regression:
            from sklearn.metrics import r2_score

            return float(r2_score(to_label_list(y, len(y)), self.predict(X), sample_weight=sample_weight))
        return super().score(X, to_label_list(y, len(y)), sample_weight=sample_weight)

    # ---- saving and loading ----------------------------------------------------------------------
    def distill(self, unlabelled: str | os.PathLike, out: str | os.PathLike, *, columns: dict | None = None,
                progress: bool | None = None, **options):  # fmt: skip
        """Distil this fitted classifier into a small student (:mod:`lmbff.distill`): it labels the texts
        of ``unlabelled`` (a data file, or a ``.txt`` of one text per line) with its probabilities, and a
        sentence encoder with a classification head (``student=``, default all-MiniLM-L6-v2) or a copy
        of this classifier's own model with every k-th layer kept (``student="teacher-layers"``,
        ``keep_every=``) learns them. ``options`` are :class:`lmbff.distill.DistillConfig` fields.
        Writes the student folder ``out`` and returns it loaded (``predict``, ``predict_proba``,
        ``score``).

        Raises:
            ConfigError: a bad option or a regression task; DataError: a bad unlabelled file;
                FileExistsError: ``out`` exists. All before the student loads.
        """
        from .distill.config import LAYER_STUDENT, DistillConfig
        from .distill.run import distill
        from .distill.student import StudentClassifier

        check_is_fitted(self, "prompt_model_")
        config = DistillConfig(**options)
        if config.student == LAYER_STUDENT:  # the teacher's own model: distilled from its saved state
            import tempfile

            from .distill.prompt_student import distill_layers

            with tempfile.TemporaryDirectory(prefix="lmbff-teacher-") as folder:
                distill_layers(
                    self.save(Path(folder) / "state"), unlabelled, out, config, columns=columns,
                    progress=self.verbose if progress is None else progress,
                )  # fmt: skip
            return StudentClassifier.load(out)
        labels = list(self.task_.labels)
        order = [list(self.classes_.astype(str)).index(label) for label in labels]  # classes_ -> task order

        def teacher(examples):
            return self.predict_proba([e.fields for e in examples])[:, order]

        record = {"classifier": {k: repr(v) if not isinstance(v, (str, int, float, bool, type(None))) else v
                                 for k, v in self.get_params(deep=False).items()},
                  "base_model": self.base_.name, "fingerprint": self.base_.fingerprint}  # fmt: skip
        distill(
            teacher, self.task_, unlabelled, out, config, teacher_record=record, columns=columns,
            classes=[self.classes_.tolist()[i] for i in order],
            progress=self.verbose if progress is None else progress,
        )  # fmt: skip
        return StudentClassifier.load(out)

    def save(self, folder: str | os.PathLike) -> Path:
        """Write a self-contained state: the trained tensors (safetensors) and everything that scores
        them (task, template, label words and their token ids, mode, limits, calibration, classes,
        demonstration pool, recipe, base-model fingerprint) as JSON. Returns the folder.

        Raises:
            sklearn.exceptions.NotFittedError: before fit. ValueError: labels that JSON cannot hold.
        """
        check_is_fitted(self, "prompt_model_")
        classes = self.classes_.tolist()
        if json.loads(json.dumps(classes, default=str)) != classes:
            raise ConfigError(f"labels {classes} cannot be saved as JSON; use strings or numbers")
        params = {k: v for k, v in self.get_params(deep=False).items() if k not in ("task", "model")}
        settings = {
            "task": self.task_.name,
            "model": self.base_.name,
            "params": params,
            "classes": classes,
            "abstain": None if getattr(self, "abstain_", None) is None else asdict(self.abstain_),
            "training": self.training_,
        }
        spec = ScoringSpec.of(self.prompt_model_, self.task_, self.demonstrations_, self.fit_seed_)
        if getattr(self, "thresholds_", None) is not None:
            spec.thresholds = self.thresholds_.to_dict()
            settings["label_form"] = self.label_form_
        tensors = self.state_.tensors if self.state_ is not None else {}
        tuning = self.state_.tuning if self.state_ is not None else None
        save_state(
            folder, tensors, tuning, {"classifier": settings}, scoring=spec, base=base_identity(self.base_),
            examples=getattr(self, "memory_", None),
        )  # fmt: skip
        return Path(folder)

    @classmethod
    def load(
        cls,
        folder: str | os.PathLike,
        model: str | LoadedModel | None = None,
        loaded: LoadedModel | None = None,
    ) -> PromptClassifier:
        """A saved classifier on its base model (``model``: a name, folder or loaded base; default: the
        one it was trained on). Reads no task file; works from any directory. A distilled student's
        folder (:meth:`distill`) loads as a :class:`lmbff.distill.StudentClassifier`, with the same
        ``predict``, ``predict_proba``, ``score`` and ``classes_``.

        Raises:
            StateError: not a saved classifier, or ``model`` is not the base it was trained on.
        """
        from .distill.folder import is_student
        from .distill.student import StudentClassifier
        from .state import StateError

        if is_student(folder):
            return StudentClassifier.load(folder)
        state = TrainedState.load(folder)
        settings = state.experiment.get("classifier")
        if state.experiment.get("method") == "finetune":
            raise StateError(f"{folder}: {FINETUNE_STATE}")
        if settings is None:
            raise StateError(
                f"{folder}: a run's state, not a saved PromptClassifier; use lmbff predict --state"
            )
        model = loaded or model
        base = (
            model
            if isinstance(model, LoadedModel)
            else shared_base(*state.base_name(model), precision=state.precision)
        )
        state.check_base(base)
        _release(base)
        scorer = state.prompt_model(base)
        task = scorer.task
        if "params" not in settings:  # saved by lmbff 0.1
            params = {"template": settings.get("template"), "max_length": settings.get("max_length", 128)}
            params.update({k: v for k, v in settings.get("training", {}).items()})
            params["backend"], params["backend_options"] = (
                settings.get("backend"),
                settings.get("backend_options"),
            )
            params["demonstrations"] = settings.get("demonstrations", False)
            classes = list(task.labels)
        else:
            params, classes = dict(settings["params"]), settings["classes"]
        if state.tuning is not None:
            # Options whose default changed since the classifier was trained take the values it was
            # trained with, so that get_params (and a clone refitted from them) say what it is.
            from .tuning import pinned_options

            options = {part: dict(values) for part, values in (params.get("backend_options") or {}).items()}
            for part, values in pinned_options(state.tuning).items():
                options[part] = {**values, **options.get(part, {})}
            if options:
                params["backend_options"] = options
        spec = state.scoring
        task_file = _task_file_of(spec, state) if spec is not None else load_task(settings["task"])
        known = set(cls().get_params(deep=False))
        # A classifier made from labels= rebuilds its task from them when refitted (the same text the
        # state carries); one made from a task file keeps the state's copy of it.
        task_arg = None if params.get("labels") is not None else task_file
        clf = cls(task_arg, base, **{k: v for k, v in params.items() if k in known})
        clf.base_, clf.prompt_model_, clf.task_ = base, scorer, task
        clf.state_ = state if state.tuning is not None else None
        clf.training_ = settings.get("training")
        clf._attached = None
        clf.demonstrations_ = spec.demonstration_pool() if spec is not None else None
        clf.fit_seed_ = (
            int(spec.demonstrations["seed"]) if spec and spec.demonstrations else int(params.get("seed", 42))
        )
        clf.classes_ = _as_array(classes)
        from .out_of_scope import AbstainRule

        rule = settings.get("abstain")
        clf.abstain_ = None if rule is None else AbstainRule.from_dict(rule)
        clf.thresholds_ = spec.label_thresholds() if spec is not None else None
        clf.memory_ = state.examples
        if task.multi_label:
            clf.label_form_ = settings.get("label_form", "lists")
        return clf


def _task_file_of(spec: ScoringSpec, state: TrainedState) -> TaskFile:
    """The task as the state carries it, as a TaskFile (refitting a loaded classifier reads no YAML)."""
    where = str(state.folder / "config.json")
    template = Template(spec.template_text, name=spec.template_name, location=TemplateLocation(where))
    prompt = PromptSpec(spec.template_name, template, spec.label_words, verbalizer_kind=spec.verbalizer)
    return TaskFile(where, spec.task, {spec.template_name: prompt}, spec.template_name)


def _release(base: LoadedModel) -> None:
    """Detach whatever trained state is on ``base`` (its holder's)."""
    holder = BASE_LEASES.holder(base)
    if holder is not None:
        holder._deactivate()


def _as_array(classes: list) -> np.ndarray:
    """Classes as scikit-learn expects them: a typed array when they share a type, else objects."""
    kinds = {type(c) for c in classes}
    return (
        np.array(classes)
        if len(kinds) == 1 and kinds <= {int, str, float}
        else np.array(classes, dtype=object)
    )


def _is_number(value) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


__all__ = ["PromptClassifier", "shared_base"]
