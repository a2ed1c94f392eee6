"""Compressing a student for CPU inference: its encoder's linear layers as dynamic int8 (weights stored as
int8 with their quantization scales; activations quantized on the fly, ``torch.ao.quantization``), saved
as a student folder that loads without the original::

    <folder>/config.json               the student's, with ``compression``: what was done
    <folder>/head.safetensors          the head (float32: a few hundred numbers per class)
    <folder>/encoder/                  the encoder's config and tokenizer (no float weights)
    <folder>/encoder_int8.safetensors  int8 linear weights, their scales and zero points, and every other
                                       parameter (embeddings, norms, biases) in float32

The int8 tensors themselves: :mod:`lmbff.distill.int8`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from ..errors import StateError
from ..files import atomic_write_json
from .int8 import INT8_WEIGHTS, int8_tensors, quantize
from .student import CONFIG, ENCODER, HEAD, load_student

COMPRESSIONS = ("int8",)


def compress_student(folder: str | os.PathLike, out: str | os.PathLike, compression: str = "int8") -> Path:
    """Write ``out``: the student of ``folder`` compressed (``int8``: dynamic int8 linear layers).

    Raises:
        ConfigError: an unknown compression; StateError: not a student folder; FileExistsError: ``out``
            exists. The folder is written atomically.
    """
    from ..errors import ConfigError

    if compression not in COMPRESSIONS:
        raise ConfigError(f"unknown compression {compression!r}; one of {', '.join(COMPRESSIONS)}")
    out = Path(out)
    if out.exists():
        raise FileExistsError(f"{out} already exists; choose another --out")
    student, config = load_student(folder)
    if config.get("compression"):
        raise StateError(f"{folder}: already compressed ({config['compression']})")
    from safetensors.torch import save_file

    quantized = quantize(student.encoder)
    out.parent.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        (staged / ENCODER).mkdir()
        student.encoder.config.save_pretrained(staged / ENCODER)
        student.tokenizer.save_pretrained(staged / ENCODER)
        save_file(int8_tensors(quantized), str(staged / INT8_WEIGHTS))
        shutil.copyfile(Path(folder) / HEAD, staged / HEAD)
        atomic_write_json(
            staged / CONFIG,
            {**config, "compression": {
                "kind": compression, "from": str(Path(folder).resolve()),
                "what": "dynamic int8 linear layers of the encoder (torch default qconfig)",
            }},
        )  # fmt: skip
        os.replace(staged, out)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    return out
