"""Numeric precision: which dtype the weights live in and how forward passes compute.

``fp32`` is everything in float32. ``bf16`` puts the weights themselves in bfloat16, not an autocast
over float32 weights: autocast re-casts every weight on every call, which on CPU eats most of the gain
at the toolkit's small batches, and on a CPU without native bf16, bf16 is several times slower than
fp32 (docs/benchmarks/precision.md). Weights that train are float32 master copies while
they train (so AdamW's moments are float32 too), and go back to the model's dtype when training ends;
while a model holds both dtypes, its forward passes run under ``torch.autocast`` in bfloat16. Label-word
logits, log-probabilities, losses and calibration are computed in float32 whatever the weights are
(:mod:`lmbff.model`).

``auto`` is bf16 where the hardware multiplies bf16 natively and fp32 elsewhere: on CPU, the
avx512_bf16 or AMX instructions (``torch.cpu`` reports them); on CUDA, native bf16 support without
emulation.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

import torch
from torch import nn

from .config import PRECISIONS, check_precision
from .tuning.base import auto_precision_of

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}

# Marks a float32 master copy of a weight that rests in bf16 (an attribute of the Parameter itself). A
# model whose every weight trains (``full``) holds no bf16 weight while it trains, so its dtypes alone
# cannot tell that it should compute in bf16.
_BF16_MASTER = "_lmbff_bf16_master"

__all__ = [
    "DTYPES",
    "PRECISIONS",
    "auto_reason",
    "bf16_native",
    "compute",
    "full_precision",
    "master_copies",
    "precision_of",
    "resolve_precision",
    "rest_dtype",
    "to_rest",
]


def bf16_native(device: str | torch.device | None = None) -> bool:
    """Whether ``device`` (default: CUDA when present, else the CPU) multiplies bf16 in hardware."""
    kind = (
        torch.device(device).type if device is not None else ("cuda" if torch.cuda.is_available() else "cpu")
    )
    if kind == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    if kind == "cpu":
        cpu = torch.cpu
        checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        return any(bool(getattr(cpu, name, lambda: False)()) for name in checks)
    return False


def resolve_precision(
    precision: str, device: str | torch.device | None = None, backend: str | None = None
) -> str:
    """``fp32`` or ``bf16`` for a requested precision. ``auto`` asks the hardware, unless the tuning
    ``backend`` of a run (None: no training) declares its own (``TuningConfig.auto_precision``: full
    fine-tuning stays in fp32).

    Raises:
        ConfigError: not one of fp32, bf16, auto.
    """
    check_precision(precision)
    if precision == "auto":
        forced = auto_precision_of(backend) if backend is not None else None
        if forced is not None:
            return forced
        return "bf16" if bf16_native(device) else "fp32"
    return precision


def auto_reason(resolved: str, backend: str | None) -> str:
    """Why ``auto`` became ``resolved`` for a run training ``backend`` (None: no training): the words
    the plan prints after it, so that fp32 on a machine with native bf16 says its real reason."""
    if resolved == "bf16":
        return "auto: this machine multiplies bf16 natively"
    if backend is not None and auto_precision_of(backend) == resolved:
        return f"auto: {backend} fine-tuning stays in fp32, which bf16 barely sped up"
    return "auto: this machine does not multiply bf16 natively"


def rest_dtype(model: nn.Module) -> torch.dtype:
    """The dtype the model's weights live in: that of its input embeddings (or first weight)."""
    embeddings = getattr(model, "get_input_embeddings", lambda: None)()
    if embeddings is not None and getattr(embeddings, "weight", None) is not None:
        return embeddings.weight.dtype
    return next(p.dtype for p in model.parameters() if p.is_floating_point())


def precision_of(model: nn.Module) -> str:
    """``bf16`` or ``fp32``: the precision a model's weights are at rest in."""
    return "bf16" if rest_dtype(model) == torch.bfloat16 else "fp32"


def master_copies(model: nn.Module, params: Iterable[nn.Parameter]) -> None:
    """Make trainable weights float32 in place (the Parameter objects stay, so tied weights stay tied
    and optimizer groups that hold them stay valid).

    In a module other than a linear layer, the frozen weights beside a trained one become float32 too:
    ``layer_norm`` takes one dtype for its weight and bias (bitfit trains only the bias), while autocast
    casts a linear layer's operands itself. They go back to bf16 with the rest (:func:`to_rest`)."""
    trained = {id(p) for p in params if p.is_floating_point()}
    for module in model.modules():
        own = list(module.parameters(recurse=False))
        if not any(id(p) in trained for p in own):
            continue
        siblings = not isinstance(module, (nn.Linear, nn.Embedding))
        for p in own:
            if (id(p) in trained or siblings) and p.is_floating_point() and p.dtype != torch.float32:
                if p.dtype == torch.bfloat16:
                    setattr(p, _BF16_MASTER, True)
                p.data = p.data.float()


def to_rest(model: nn.Module, dtype: torch.dtype) -> None:
    """Put every floating-point weight of ``model`` in ``dtype`` (after training, after a state is
    attached: a bf16 model scores the same whether its weights were just trained or just loaded)."""
    for p in model.parameters():
        if p.is_floating_point() and p.dtype != dtype:
            p.data = p.data.to(dtype)
        if hasattr(p, _BF16_MASTER):
            delattr(p, _BF16_MASTER)


def _bf16_compute(model: nn.Module) -> bool:
    """Whether a model at rest in bf16 holds float32 weights: master copies, or modules a backend added."""
    dtypes = set()
    for p in model.parameters():
        if getattr(p, _BF16_MASTER, False):
            return True
        if p.is_floating_point():
            dtypes.add(p.dtype)
    return torch.bfloat16 in dtypes and len(dtypes) > 1


@contextlib.contextmanager
def compute(model: nn.Module) -> Iterator[None]:
    """Run a forward pass in the model's precision: under bf16 autocast while it holds bf16 and float32
    weights at once (trainable master copies, or modules a backend added) or only master copies of bf16
    weights (``full`` while it trains), as it is otherwise."""
    if not _bf16_compute(model):
        yield
        return
    device = next(model.parameters()).device.type
    with torch.autocast(device_type=device, dtype=torch.bfloat16):
        yield


def full_precision(device: torch.device | str) -> contextlib.AbstractContextManager:
    """No autocast: what is computed inside stays in the dtypes it is given (float32 read-outs)."""
    kind = torch.device(device).type
    return torch.autocast(device_type=kind, enabled=False)
