"""The student: a sentence encoder (all-MiniLM-L6-v2 by default) with a linear classification head on its
mean-pooled token features, saved as a self-contained folder (safetensors plus JSON, never pickle)::

    <folder>/config.json          what it is: the task, its labels, the teacher's identity, the
                                  unlabelled data's hash, the teacher-student agreement, the recipe
    <folder>/head.safetensors     the classification head
    <folder>/encoder/             the fine-tuned encoder and its tokenizer (save_pretrained)

It loads without its teacher, its base model or the encoder it started from.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from prompts.library import Task

from ..data import Example
from ..errors import InputError, ModelNotFound, StateError
from ..files import atomic_write_json, read_safetensors, staged_folder
from .folder import CONFIG, STUDENT_KIND, require_files, student_header
from .int8 import INT8_WEIGHTS, load_int8_encoder

HEAD = "head.safetensors"
ENCODER = "encoder"


def resolve_student(name: str) -> str:
    """A student encoder's folder: the packaged all-MiniLM-L6-v2 for its name, else ``name`` (a folder
    with a config.json, or a Hugging Face name in the local hub cache or on a reachable hub), checked
    without loading its weights.

    Raises:
        ModelNotFound: the package, folder or name cannot be found; the message says what to pass.
    """
    from ..config import DEFAULT_EMBEDDER
    from ..demonstrations import resolve_embedder
    from ..pretrained import _config

    if name == DEFAULT_EMBEDDER:
        try:
            return resolve_embedder(name)
        except FileNotFoundError as error:
            raise ModelNotFound(str(error)) from None
    return _config(name)[0]


class EncoderStudent(nn.Module):
    """An encoder's mean-pooled token features, then a linear layer over the task's labels."""

    def __init__(self, encoder: nn.Module, tokenizer, task: Task, max_length: int = 128):
        super().__init__()
        self.encoder, self.tokenizer, self.task, self.max_length = encoder, tokenizer, task, max_length
        self.head = nn.Linear(encoder.config.hidden_size, len(task.labels))

    @classmethod
    def start(cls, name: str, task: Task, max_length: int, seed: int) -> EncoderStudent:
        """A new student from an encoder folder or name (its head initialised from ``seed``)."""
        from transformers import AutoModel, AutoTokenizer

        path = resolve_student(name)
        torch.manual_seed(seed)
        encoder = AutoModel.from_pretrained(path, dtype=torch.float32)
        return cls(encoder, AutoTokenizer.from_pretrained(path), task, max_length)

    def batch(self, examples: Sequence[Example]) -> dict[str, torch.Tensor]:
        """Token ids of examples: one field, or the task's two fields as a pair."""
        fields = self.task.fields
        first = [e.fields[fields[0]] for e in examples]
        second = [e.fields[fields[1]] for e in examples] if len(fields) > 1 else None
        return self.tokenizer(
            first, second, truncation=True, max_length=self.max_length, padding=True, return_tensors="pt"
        )

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        hidden = self.encoder(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)
        return self.head(pooled.float())  # the head stays float32 under a bf16 encoder

    @torch.inference_mode()
    def predict_log_proba(self, examples: Sequence[Example], batch_size: int = 64) -> np.ndarray:
        """Log-probabilities (N, labels), in the examples' order; batches in length order pad little."""
        was_training = self.training
        self.eval()
        order = sorted(range(len(examples)), key=lambda i: -sum(len(v) for v in examples[i].fields.values()))
        out = np.zeros((len(examples), len(self.task.labels)), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            chosen = order[start : start + batch_size]
            logits = self(self.batch([examples[i] for i in chosen]))
            out[chosen] = logits.float().log_softmax(-1).numpy()
        self.train(was_training)
        return out

    def save(self, folder: str | os.PathLike, record: dict) -> Path:
        """Write the student folder atomically (staged beside it, then renamed into place); ``record`` is
        what config.json says of its teacher, data and training. Refuses a folder that exists."""
        from safetensors.torch import save_file

        with staged_folder(folder) as staged:
            self.encoder.save_pretrained(staged / ENCODER, safe_serialization=True)
            self.tokenizer.save_pretrained(staged / ENCODER)
            head = {name: p.detach().contiguous() for name, p in self.head.state_dict().items()}
            save_file(head, str(staged / HEAD))
            config = {**student_header("encoder", self.task), "max_length": self.max_length, **record}
            atomic_write_json(staged / CONFIG, config)
        return Path(folder)


def load_student(folder: str | os.PathLike) -> tuple[EncoderStudent, dict]:
    """(the student, its config.json) from a student folder.

    Raises:
        StateError: a missing file (named), or a folder that is not a student.
    """
    from transformers import AutoModel, AutoTokenizer

    folder = Path(folder)
    if not (folder / CONFIG).is_file():
        raise StateError(f"{folder}: not a complete student folder; missing {CONFIG}")
    try:
        config = json.loads((folder / CONFIG).read_text())
    except ValueError as error:
        raise StateError(f"{folder / CONFIG}: not JSON ({error})") from None
    if not isinstance(config, dict) or config.get("kind") != STUDENT_KIND:
        kind = config.get("kind") if isinstance(config, dict) else None
        raise StateError(f"{folder / CONFIG}: not a student (kind {kind!r})")
    compression = config.get("compression") or {}
    if not isinstance(compression, dict):
        raise StateError(f"{folder / CONFIG}: unknown compression {compression!r}")
    # folders from before bf16 and pruning said only {"kind": "int8"}
    weights = compression.get("weights", compression.get("kind"))
    if weights not in (None, "fp32", "bf16", "int8"):
        raise StateError(f"{folder / CONFIG}: unknown compression {compression!r}")
    if config.get("student") == "prompt":  # lmbff.distill.prompt_student: the teacher's own kind of model
        from .prompt_student import load_prompt_student, prompt_folder_files

        require_files(folder, prompt_folder_files(folder, config))
        return load_prompt_student(folder, config), config
    required = [CONFIG, HEAD, f"{ENCODER}/config.json", f"{ENCODER}/tokenizer_config.json"]
    # the float encoder's weights, or the compressed one's integers (lmbff.distill.int8)
    required.append(INT8_WEIGHTS if weights == "int8" else f"{ENCODER}/model.safetensors")
    require_files(folder, required)
    task = Task.from_dict(config["task"])
    if weights == "int8":  # lmbff.distill.compress: int8 linear layers, built from the stored integers
        encoder = load_int8_encoder(folder / ENCODER, folder / INT8_WEIGHTS)
    else:
        dtype = torch.bfloat16 if weights == "bf16" else torch.float32
        encoder = AutoModel.from_pretrained(folder / ENCODER, dtype=dtype)
    student = EncoderStudent(
        encoder, AutoTokenizer.from_pretrained(folder / ENCODER), task, config["max_length"]
    )
    head = read_safetensors(str(folder / HEAD))
    try:
        student.head.load_state_dict(head)
    except RuntimeError as error:
        raise StateError(f"{folder / HEAD}: does not fit the student's labels ({error})") from None
    student.eval()
    return student, config


class StudentClassifier:
    """A saved student with the estimator's prediction API (``predict``, ``predict_proba``, ``score``,
    ``classes_``), as :meth:`lmbff.PromptClassifier.load` returns it for a student folder."""

    def __init__(self, student: EncoderStudent, config: dict, folder: str | os.PathLike):
        self.student, self.config, self.folder = student, config, Path(folder)
        self.classes_ = np.asarray(config.get("classes") or list(student.task.labels))

    @classmethod
    def load(cls, folder: str | os.PathLike) -> StudentClassifier:
        return cls(*load_student(folder), folder)

    def _examples(self, X) -> list[Example]:
        from ..inputs import to_examples

        examples = to_examples(X, self.student.task.fields)
        if not examples:
            raise InputError("no inputs: pass at least one example")
        return examples

    def predict_proba(self, X) -> np.ndarray:
        return np.exp(self.student.predict_log_proba(self._examples(X)))

    def predict(self, X) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def score(self, X, y) -> float:
        return float(np.mean(self.predict(X).astype(str) == np.asarray(y).astype(str)))

    def __repr__(self) -> str:
        return f"StudentClassifier({str(self.folder)!r}, labels={list(self.classes_)})"
