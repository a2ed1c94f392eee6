"""Compressing a student for CPU inference: its encoder's linear layers as dynamic int8 (weights stored as
int8 with their quantization scales; activations quantized on the fly, ``torch.ao.quantization``), saved
as a student folder that loads without the original::

    <folder>/config.json               the student's, with ``compression``: what was done
    <folder>/head.safetensors          the head (float32: a few hundred numbers per class)
    <folder>/encoder/                  the encoder's config and tokenizer (no float weights)
    <folder>/encoder_int8.safetensors  int8 linear weights, their scales and zero points, and every other
                                       parameter (embeddings, norms, biases) in float32

Why by hand: torch's quantized modules pickle their packed weights (``torch.save``), and this toolkit
never unpickles; the int8 values, scales and zero points are plain tensors that safetensors holds.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import torch
from torch import nn

from ..errors import StateError
from ..files import atomic_write_json, read_safetensors
from .student import CONFIG, ENCODER, HEAD, load_student

INT8_WEIGHTS = "encoder_int8.safetensors"
COMPRESSIONS = ("int8",)


def quantize(encoder: nn.Module) -> nn.Module:
    """The encoder with dynamic int8 linear layers (torch's default dynamic qconfig)."""
    return torch.ao.quantization.quantize_dynamic(encoder, {nn.Linear}, dtype=torch.qint8)


def _int8_tensors(quantized: nn.Module) -> dict[str, torch.Tensor]:
    """Every tensor of a dynamically quantized encoder as plain tensors: int8 weights with their scale and
    zero point (per tensor or per output channel), and the float parameters and buffers as they are."""
    tensors: dict[str, torch.Tensor] = {}
    linear_names = set()
    for name, module in quantized.named_modules():
        if isinstance(module, torch.ao.nn.quantized.dynamic.Linear):
            linear_names.add(name)
            weight, bias = module._weight_bias()
            tensors[f"{name}.int8_weight"] = weight.int_repr().contiguous()
            if weight.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric):
                tensors[f"{name}.scales"] = weight.q_per_channel_scales().float().contiguous()
                tensors[f"{name}.zero_points"] = weight.q_per_channel_zero_points().contiguous()
            else:
                tensors[f"{name}.scales"] = torch.tensor([weight.q_scale()], dtype=torch.float32)
                tensors[f"{name}.zero_points"] = torch.tensor([weight.q_zero_point()], dtype=torch.int64)
            if bias is not None:
                tensors[f"{name}.bias"] = bias.detach().float().contiguous()
    for name, value in quantized.state_dict().items():  # persistent tensors only, as a float model has
        parents = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
        if isinstance(value, torch.Tensor) and not parents & linear_names:
            tensors[name] = value.detach().contiguous()
    return tensors


def _restore_int8(encoder: nn.Module, tensors: dict[str, torch.Tensor], where: str) -> nn.Module:
    """The float ``encoder`` (built from its config) with the stored tensors: its other parameters loaded
    first, then quantized, then every linear layer given its stored integers, scales and zero points."""
    int8_parts = ("int8_weight", "scales", "zero_points", "bias")
    linear = {name.rsplit(".", 1)[0] for name in tensors if name.endswith(".int8_weight")}
    rest = {
        n: v
        for n, v in tensors.items()
        if not (n.rsplit(".", 1)[0] in linear and n.rsplit(".", 1)[1] in int8_parts)
    }
    missing, unexpected = encoder.load_state_dict(rest, strict=False)
    missing = [m for m in missing if m.rsplit(".", 1)[0] not in linear]
    if missing or unexpected:
        raise StateError(
            f"{where}: does not fit the encoder (missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    quantized = quantize(encoder)
    for name, module in quantized.named_modules():
        if not isinstance(module, torch.ao.nn.quantized.dynamic.Linear):
            continue
        if name not in linear:
            raise StateError(f"{where}: no int8 weight for the encoder's layer {name}")
        values = tensors[f"{name}.int8_weight"].to(torch.int32)
        scales, zero_points = tensors[f"{name}.scales"], tensors[f"{name}.zero_points"]
        # the stored integers exactly: (q - zero point) * scale re-quantizes to q with the same scale
        if scales.numel() > 1:
            real = (values - zero_points[:, None]).float() * scales[:, None]
            weight = torch.quantize_per_channel(real, scales.double(), zero_points, 0, torch.qint8)
        else:
            real = (values - zero_points.item()).float() * scales.item()
            weight = torch.quantize_per_tensor(real, scales.item(), int(zero_points.item()), torch.qint8)
        module.set_weight_bias(weight, tensors.get(f"{name}.bias"))
    return quantized


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
        save_file(_int8_tensors(quantized), str(staged / INT8_WEIGHTS))
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


def load_compressed_encoder(folder: Path, config: dict) -> nn.Module:
    """The int8 encoder of a compressed student folder, built from its config (no float weights read)."""
    from transformers import AutoConfig, AutoModel

    if (config.get("compression") or {}).get("kind") != "int8":
        raise StateError(f"{folder / CONFIG}: unknown compression {config.get('compression')!r}")
    if not (folder / INT8_WEIGHTS).is_file():
        raise StateError(f"{folder}: not a complete compressed student; missing {INT8_WEIGHTS}")
    encoder = AutoModel.from_config(AutoConfig.from_pretrained(folder / ENCODER), dtype=torch.float32)
    tensors = read_safetensors(str(folder / INT8_WEIGHTS))
    return _restore_int8(encoder, tensors, str(folder / INT8_WEIGHTS)).eval()
