"""Compressing a model for CPU inference, into a new folder that loads without the original:

- a tuned prompt model (a saved state on its base): the state folded into the base's weights
  (:func:`lmbff.distill.prompt_student.merged_weights`), written as a prompt model folder;
- a student (an encoder with a head, or a prompt model folder).

What is done (:class:`Compression`), measured in docs/distillation.md:

- ``weights``: ``bf16`` (every weight in bfloat16) or ``int8`` (dynamic int8 linear layers, weights stored
  as int8 with their quantization scales, activations quantized on the fly by ``torch.ao.quantization``;
  of a prompt model, only the transformer layers, per output channel, and not the MLP's output
  projection (:data:`lmbff.distill.int8.PROMPT_MODEL_INT8`): its output layer scores the label words);
- ``prune``: magnitude pruning (``torch.nn.utils.prune.l1_unstructured``) of that fraction of each
  linear layer's weights (of a prompt model, in its transformer layers), before any int8.

An encoder student's int8 folder::

    <folder>/config.json               the student's, with ``compression``: what was done
    <folder>/head.safetensors          the head (float32: a few hundred numbers per class)
    <folder>/encoder/                  the encoder's config and tokenizer (no float weights)
    <folder>/encoder_int8.safetensors  int8 linear weights, their scales and zero points, and every other
                                       parameter (embeddings, norms, biases) in float32

The int8 tensors themselves: :mod:`lmbff.distill.int8`.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, replace
from pathlib import Path

import torch
from torch import nn

from ..errors import ConfigError, StateError
from ..files import atomic_write_json, refuse_existing, staged_folder
from .config import Compression
from .folder import CONFIG
from .int8 import INT8_WEIGHTS, PROMPT_MODEL_INT8, int8_tensors, quantize
from .student import ENCODER, HEAD, load_student


def prune_linear(module: nn.Module, fraction: float) -> float:
    """Zero ``fraction`` of each linear layer's weights in ``module`` (the smallest in magnitude, layer by
    layer) and make it permanent; returns the share of those weights that are zero afterwards."""
    from torch.nn.utils import prune

    zeros = total = 0
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            if fraction > 0:
                prune.l1_unstructured(layer, "weight", amount=fraction)
                prune.remove(layer, "weight")
            zeros += int((layer.weight == 0).sum())
            total += layer.weight.numel()
    return zeros / max(total, 1)


def compress_student(
    folder: str | os.PathLike, out: str | os.PathLike, compression: Compression | str = "int8"
) -> Path:
    """Write ``out``: the student of ``folder`` compressed. ``compression``: a :class:`Compression`, or the
    weights' form alone (``"int8"``).

    Raises:
        ConfigError: a bad compression; StateError: not a student folder, or one already compressed;
            FileExistsError: ``out`` exists. The folder is written atomically.
    """
    if isinstance(compression, str):
        compression = Compression(weights=compression)
    if not compression.weights and not compression.prune:
        raise ConfigError("nothing to compress: give --int8, --bf16 or --prune")
    out = Path(out)
    refuse_existing(out)
    student, config = load_student(folder)
    if config.get("compression"):
        raise StateError(f"{folder}: already compressed ({config['compression']})")
    record = {
        "kind": compression.weights or "fp32",
        **asdict(compression),
        "from": str(Path(folder).resolve()),
        "what": compression.describe(),
    }
    if config.get("student") == "prompt":
        from ..layer_drop import transformer_layers

        model = student.loaded.model
        record["zeros"] = prune_linear(transformer_layers(model), compression.prune)
        method = student.state.experiment.get("method", "student")
        return _write_prompt(
            out, model, student.loaded.tokenizer, student.state, config, compression, record, method
        )
    record["zeros"] = prune_linear(student.encoder, compression.prune)
    with staged_folder(out) as staged:
        (staged / ENCODER).mkdir()
        if compression.weights == "int8":
            from safetensors.torch import save_file

            student.encoder.config.save_pretrained(staged / ENCODER)
            save_file(int8_tensors(quantize(student.encoder)), str(staged / INT8_WEIGHTS))
        else:
            dtype = torch.bfloat16 if compression.weights == "bf16" else torch.float32
            student.encoder.to(dtype).save_pretrained(staged / ENCODER, safe_serialization=True)
        student.tokenizer.save_pretrained(staged / ENCODER)
        shutil.copyfile(Path(folder) / HEAD, staged / HEAD)
        atomic_write_json(staged / CONFIG, {**config, "compression": record})
    return out


def _write_prompt(
    out: Path, model, tokenizer, state, config: dict, compression: Compression, record: dict, method: str
) -> Path:
    """A prompt model folder of ``model`` in the compression's weights, scoring as ``state`` does."""
    from ..layer_drop import transformer_layers
    from ..prototypes import split_prototype_tensors
    from .prompt_student import save_prompt_folder

    int8 = None
    precision = compression.weights if compression.weights in ("fp32", "bf16") else state.precision
    if compression.weights == "int8":
        model = quantize(model.float(), transformer_layers, PROMPT_MODEL_INT8)
        int8, precision = int8_tensors(model), "fp32"
        record["int8"] = PROMPT_MODEL_INT8.to_dict()
    else:
        model = model.to(torch.bfloat16 if precision == "bf16" else torch.float32)
    spec = replace(state.scoring, precision=precision)
    prototypes = split_prototype_tensors(state.tensors)[1]
    kept = {
        k: v for k, v in config.items() if k not in ("format", "kind", "student", "lmbff_version", "task")
    }
    return save_prompt_folder(
        out, model, tokenizer, spec, prototypes, {**kept, "compression": record}, method, int8=int8
    )


def compress_state(
    state_folder: str | os.PathLike, out: str | os.PathLike, compression: Compression | None = None
) -> Path:
    """Write ``out``: the tuned prompt model of a saved state (its base with the state folded into the
    weights) as a prompt model folder, compressed; it scores as the state does (its template, label
    words, calibration and demonstrations) and loads without the base or the state.

    Raises:
        StateError: not a prompt state; ConfigError: a state whose backend adds modules that do not fold
            into weights (soft prompts, prefixes, adapters); FileExistsError: ``out`` exists. All before
            the base loads.
    """
    from ..layer_drop import drop_layers, transformer_layers
    from ..state import TrainedState
    from .prompt_student import MERGEABLE, merged_weights
    from .sources import check_teacher_state, teacher_record

    compression = compression or Compression()
    out = Path(out)
    refuse_existing(out)
    state = TrainedState.load(state_folder)
    check_teacher_state(state)
    backend = state.tuning.to_dict().get("backend") if state.tuning is not None else None
    if backend is not None and backend not in MERGEABLE:
        raise ConfigError(
            f"{state.folder}: a {backend!r} state adds modules that do not fold into the model's weights "
            f"(only {', '.join(MERGEABLE)} states do); distil it into a student instead (lmbff distill)"
        )
    base = state.load_base(None, precision=state.precision)
    scorer = state.prompt_model(base)
    attached = state.attach(scorer)
    try:
        layers = len(transformer_layers(base.model))
        model = drop_layers(base.model, range(layers), merged_weights(base.model)).float()  # a merged copy
    finally:
        attached.detach()
    record = {
        "kind": compression.weights or state.precision,
        **asdict(compression),
        "from": str(Path(state_folder).resolve()),
        "what": compression.describe(),
    }
    record["zeros"] = prune_linear(transformer_layers(model), compression.prune)
    classes = (state.experiment.get("classifier") or {}).get("classes")  # a saved PromptClassifier's
    config = {"teacher": teacher_record([state]), "classes": classes or list(state.scoring.task.labels)}
    return _write_prompt(out, model, base.tokenizer, state, config, compression, record, "compressed")


def folder_size_mb(folder: str | os.PathLike) -> float:
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file()) / 2**20


def describe(folder: str | os.PathLike) -> str:
    """One line on a compressed folder: what was done and its size."""
    config = json.loads((Path(folder) / CONFIG).read_text())
    return f"{config['compression']['what']}, {folder_size_mb(folder):.0f} MB"
