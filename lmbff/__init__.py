"""lmbff: prompt-based few-shot learning. A pre-trained language model becomes a classifier through a
cloze prompt and label words (or learned prototypes), then is tuned on a few labelled examples.

The public API is importable from here::

    from lmbff import PromptClassifier, load_task, make_config, register_backend

Every name is loaded on first use (PEP 562), so ``import lmbff`` and ``lmbff --help`` stay fast;
``lmbff.__all__`` lists them. Submodules (``lmbff.model``, ``lmbff.data``, ...) hold the rest.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

# public name -> (module, attribute)
_EXPORTS: dict[str, tuple[str, str]] = {
    # the estimator, the prompt model, models and tasks
    "PromptClassifier": ("lmbff.classifier", "PromptClassifier"),
    "PromptModel": ("lmbff.model", "PromptModel"),
    "load_model": ("lmbff.pretrained", "load_model"),
    "LoadedModel": ("lmbff.pretrained", "LoadedModel"),
    "load_task": ("prompts.library", "load_task"),
    "TaskFile": ("prompts.library", "TaskFile"),
    "Task": ("prompts.library", "Task"),
    "Template": ("prompts.template", "Template"),
    # data
    "Example": ("lmbff.data", "Example"),
    "read_examples": ("lmbff.data", "read_examples"),
    "load_split": ("lmbff.data", "load_split"),
    "make_splits": ("lmbff.splits", "make_splits"),
    # configuration
    "TrainingArguments": ("lmbff.config", "TrainingArguments"),
    "DemonstrationConfig": ("lmbff.config", "DemonstrationConfig"),
    "PrototypeConfig": ("lmbff.config", "PrototypeConfig"),
    "LabelSearchConfig": ("lmbff.config", "LabelSearchConfig"),
    "TemplateSearchConfig": ("lmbff.config", "TemplateSearchConfig"),
    "ExperimentConfig": ("lmbff.experiment", "ExperimentConfig"),
    "option": ("lmbff.options", "option"),
    # runs and states
    "run": ("lmbff.runs", "run"),
    "TrainedState": ("lmbff.state", "TrainedState"),
    "predict_with_states": ("lmbff.predict", "predict_with_states"),
    # deployment: distilled students
    "DistillConfig": ("lmbff.distill.config", "DistillConfig"),
    "StudentClassifier": ("lmbff.distill.student", "StudentClassifier"),
    # extending: tuning backends and scoring modes
    "TuningConfig": ("lmbff.tuning", "TuningConfig"),
    "make_config": ("lmbff.tuning", "make_config"),
    "register_backend": ("lmbff.tuning", "register"),
    "backend_names": ("lmbff.tuning", "backend_names"),
    "ScoringMode": ("lmbff.scoring", "ScoringMode"),
    "register_mode": ("lmbff.scoring", "register_mode"),
    "mode_names": ("lmbff.scoring", "mode_names"),
    # errors
    "LmbffError": ("lmbff.errors", "LmbffError"),
    "ConfigError": ("lmbff.errors", "ConfigError"),
    "InputError": ("lmbff.errors", "InputError"),
    "DataError": ("lmbff.errors", "DataError"),
    "StateError": ("lmbff.errors", "StateError"),
    "ModelError": ("lmbff.errors", "ModelError"),
    "ModelNotFound": ("lmbff.errors", "ModelNotFound"),
    "TaskFileError": ("lmbff.errors", "TaskFileError"),
    "TemplateError": ("lmbff.errors", "TemplateError"),
}

__all__ = [
    "ConfigError",
    "DataError",
    "DemonstrationConfig",
    "DistillConfig",
    "Example",
    "ExperimentConfig",
    "InputError",
    "LabelSearchConfig",
    "LmbffError",
    "LoadedModel",
    "ModelError",
    "ModelNotFound",
    "PromptClassifier",
    "PromptModel",
    "PrototypeConfig",
    "ScoringMode",
    "StateError",
    "StudentClassifier",
    "Task",
    "TaskFile",
    "TaskFileError",
    "Template",
    "TemplateError",
    "TemplateSearchConfig",
    "TrainedState",
    "TrainingArguments",
    "TuningConfig",
    "__version__",
    "backend_names",
    "load_model",
    "load_split",
    "load_task",
    "make_config",
    "make_splits",
    "mode_names",
    "option",
    "predict_with_states",
    "read_examples",
    "register_backend",
    "register_mode",
    "run",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'lmbff' has no attribute {name!r}")
    module, attribute = _EXPORTS[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:  # what type checkers and IDEs see; at run time the names load lazily
    from prompts.library import Task, TaskFile, load_task
    from prompts.template import Template

    from .classifier import PromptClassifier
    from .config import (
        DemonstrationConfig,
        LabelSearchConfig,
        PrototypeConfig,
        TemplateSearchConfig,
        TrainingArguments,
    )
    from .data import Example, load_split, read_examples
    from .distill.config import DistillConfig
    from .distill.student import StudentClassifier
    from .errors import (
        ConfigError,
        DataError,
        InputError,
        LmbffError,
        ModelError,
        ModelNotFound,
        StateError,
        TaskFileError,
        TemplateError,
    )
    from .experiment import ExperimentConfig
    from .model import PromptModel
    from .options import option
    from .predict import predict_with_states
    from .pretrained import LoadedModel, load_model
    from .runs import run
    from .scoring import ScoringMode, mode_names, register_mode
    from .splits import make_splits
    from .state import TrainedState
    from .tuning import TuningConfig, backend_names, make_config
    from .tuning import register as register_backend
