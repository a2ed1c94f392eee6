"""Dynamic int8 linear layers, as plain tensors: of a student's encoder, or of a prompt model's transformer
layers (its output layer, which scores the label words, stays float). What :mod:`lmbff.distill.compress`
writes and :func:`lmbff.distill.student.load_student` reads.

Why by hand: torch's quantized modules pickle their packed weights (``torch.save``), and this toolkit never
unpickles; the int8 values, scales and zero points are plain tensors that safetensors holds.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..errors import StateError
from ..files import read_safetensors

INT8_WEIGHTS = "encoder_int8.safetensors"  # an encoder student's
INT8_MODEL = "model_int8.safetensors"  # a prompt model's (lmbff.distill.prompt_student)


@contextlib.contextmanager
def _quantization_deprecations() -> Iterator[None]:
    """torch 2.13 marks torch.ao.quantization and its quantized tensor functions deprecated in favour of
    torchao, which this toolkit does not depend on. The API is still there, and it is what the
    measurements used (docs/distillation.md). These two warnings, understood, are silenced here; any
    other still shows."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "torch.ao.quantization is deprecated", DeprecationWarning)
        warnings.filterwarnings("ignore", ".*quantize_per_tensor.*deprecated", UserWarning)
        yield


@dataclass(frozen=True)
class Int8Recipe:
    """Which linear layers become int8 and how: per output channel or per tensor, and the layers (by the
    end of their name) that stay float."""

    per_channel: bool = False
    float_layers: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {"per_channel": self.per_channel, "float_layers": list(self.float_layers)}

    @classmethod
    def from_dict(cls, data: dict | None) -> Int8Recipe:
        data = data or {}
        return cls(bool(data.get("per_channel", False)), tuple(data.get("float_layers", ())))


# A prompt model's recipe, chosen by agreement with the bf16 teacher on 400 SST-2 training texts (never
# test; docs/distillation.md): per-tensor int8 agreed on 0.863 of them, per-channel on 0.910, per-channel
# with the MLP's output projection (whose inputs carry Gemma's outlier activations) left float on 0.965.
PROMPT_MODEL_INT8 = Int8Recipe(per_channel=True, float_layers=("down_proj",))


def quantize(
    model: nn.Module,
    within: Callable[[nn.Module], nn.Module] | None = None,
    recipe: Int8Recipe = Int8Recipe(),
) -> nn.Module:
    """The model with dynamic int8 linear layers (torch's default dynamic qconfig, or its per-channel one):
    a quantized copy of all of them, or, with ``within``, those of the submodule ``within(model)`` only,
    in place; the layers the recipe names stay float."""
    qconfig = (
        torch.ao.quantization.per_channel_dynamic_qconfig
        if recipe.per_channel
        else torch.ao.quantization.default_dynamic_qconfig
    )
    scope = model if within is None else within(model)
    chosen = {
        name: qconfig
        for name, module in scope.named_modules()
        if isinstance(module, nn.Linear) and not any(name.endswith(end) for end in recipe.float_layers)
    }
    with _quantization_deprecations():
        if within is None:  # a quantized copy
            return torch.ao.quantization.quantize_dynamic(model, chosen, dtype=torch.qint8)
        torch.ao.quantization.quantize_dynamic(scope, chosen, dtype=torch.qint8, inplace=True)
        return model


def tied_names(model: nn.Module) -> set[str]:
    """Names under which a parameter appears a second time (an output layer tied to the embedding)."""
    every = {name for name, _ in model.named_parameters(remove_duplicate=False)}
    return every - set(dict(model.named_parameters()))


def int8_tensors(quantized: nn.Module) -> dict[str, torch.Tensor]:
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
    tied = tied_names(quantized)  # stored once, under the embedding's name (safetensors refuses shared ones)
    for name, value in quantized.state_dict().items():  # persistent tensors only, as a float model has
        parents = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
        if isinstance(value, torch.Tensor) and not parents & linear_names and name not in tied:
            tensors[name] = value.detach().contiguous()
    return tensors


def _restore_int8(
    encoder: nn.Module,
    tensors: dict[str, torch.Tensor],
    where: str,
    within: Callable | None = None,
    recipe: Int8Recipe = Int8Recipe(),
) -> nn.Module:
    """The float ``encoder`` (built from its config) with the stored tensors: its other parameters loaded
    first, then quantized (as :func:`quantize` with ``within``), then every linear layer given its stored
    integers, scales and zero points."""
    int8_parts = ("int8_weight", "scales", "zero_points", "bias")
    linear = {name.rsplit(".", 1)[0] for name in tensors if name.endswith(".int8_weight")}
    rest = {
        n: v
        for n, v in tensors.items()
        if not (n.rsplit(".", 1)[0] in linear and n.rsplit(".", 1)[1] in int8_parts)
    }
    missing, unexpected = encoder.load_state_dict(rest, strict=False)
    tied = tied_names(encoder)
    missing = [m for m in missing if m.rsplit(".", 1)[0] not in linear and m not in tied]
    if missing or unexpected:
        raise StateError(
            f"{where}: does not fit the encoder (missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    quantized = quantize(encoder, within, recipe)
    for name, module in quantized.named_modules():
        if not isinstance(module, torch.ao.nn.quantized.dynamic.Linear):
            continue
        if name not in linear:
            raise StateError(f"{where}: no int8 weight for the encoder's layer {name}")
        values = tensors[f"{name}.int8_weight"].to(torch.int32)
        scales, zero_points = tensors[f"{name}.scales"], tensors[f"{name}.zero_points"]
        # the stored integers exactly: (q - zero point) * scale re-quantizes to q with the same scale
        with _quantization_deprecations():
            if scales.numel() > 1:
                real = (values - zero_points[:, None]).float() * scales[:, None]
                weight = torch.quantize_per_channel(real, scales.double(), zero_points, 0, torch.qint8)
            else:
                real = (values - zero_points.item()).float() * scales.item()
                weight = torch.quantize_per_tensor(real, scales.item(), int(zero_points.item()), torch.qint8)
            module.set_weight_bias(weight, tensors.get(f"{name}.bias"))
    return quantized


def load_int8_encoder(encoder_dir: Path, weights: Path) -> nn.Module:
    """An int8 encoder built from its config folder and its stored integers (no float weights read)."""
    from transformers import AutoConfig, AutoModel

    encoder = AutoModel.from_config(AutoConfig.from_pretrained(encoder_dir), dtype=torch.float32)
    return _restore_int8(encoder, read_safetensors(str(weights)), str(weights)).eval()


def load_int8_model(model_dir: Path, weights: Path, kind: str, recipe: Int8Recipe) -> nn.Module:
    """A prompt model (masked or causal LM) whose transformer layers are int8 as ``recipe`` says, built
    from its config folder and its stored integers."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForMaskedLM

    from ..layer_drop import transformer_layers

    auto = AutoModelForMaskedLM if kind == "masked" else AutoModelForCausalLM
    model = auto.from_config(AutoConfig.from_pretrained(model_dir), dtype=torch.float32)
    tensors = read_safetensors(str(weights))
    return _restore_int8(model, tensors, str(weights), transformer_layers, recipe).eval()
