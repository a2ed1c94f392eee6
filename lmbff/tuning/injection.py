"""Where added parameters live and how they come off again.

Added modules (soft prompt, prefixes, adapters, gates) sit in ``model.lmbff_tuning``, an ``nn.ModuleDict``,
so ``named_parameters()``, DDP and safetensors see them under stable names; they act on the model
through forward hooks, whose handles are kept so :func:`detach` can remove every trace and give the
frozen base back for the next task. peft's LoRA layers are unwrapped to their base layers.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..errors import ModelError

CONTAINER = "lmbff_tuning"


def container(model: nn.Module) -> nn.ModuleDict:
    """The model's container of added modules, created (with the attention-mask capture) on first use."""
    if not hasattr(model, CONTAINER):
        model.add_module(CONTAINER, nn.ModuleDict())
        box = getattr(model, CONTAINER)
        box._lmbff_handles = []  # plain list: not a module, not a parameter
        box._lmbff_mask = None

        def capture_mask(module, args, kwargs):
            # Gates average over real tokens only; the 2D padding mask is the one thing hooks deeper in
            # the network cannot see, so it is kept here for the duration of the forward pass.
            mask = kwargs.get("attention_mask")
            box._lmbff_mask = mask if mask is not None and mask.dim() == 2 else None

        box._lmbff_handles.append(model.register_forward_pre_hook(capture_mask, with_kwargs=True))
    return getattr(model, CONTAINER)


def add_hook(model: nn.Module, handle) -> None:
    container(model)._lmbff_handles.append(handle)


def on_detach(model: nn.Module, undo: Callable[[], None]) -> None:
    """Register something to undo when the added modules come off (e.g. the attention function)."""
    container(model)._lmbff_handles.append(_Undo(undo))


class _Undo:
    def __init__(self, undo: Callable[[], None]):
        self.remove = undo


def sequence_mean(model: nn.Module, values: torch.Tensor) -> torch.Tensor:
    """Mean over the sequence of ``values`` (batch, seq, k), counting only real (unpadded) tokens."""
    mask = container(model)._lmbff_mask
    if mask is None or mask.shape[:2] != values.shape[:2]:
        return values.mean(dim=1)
    weights = mask.to(values.dtype).unsqueeze(-1)
    return (values * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1)


def detach(model: nn.Module) -> None:
    """Remove every added module, hook and peft layer: the model is its frozen base again."""
    if hasattr(model, CONTAINER):
        for handle in reversed(getattr(model, CONTAINER)._lmbff_handles):
            handle.remove()
        delattr(model, CONTAINER)
    from peft.tuners.tuners_utils import BaseTunerLayer

    for name, module in list(model.named_modules()):
        if isinstance(module, BaseTunerLayer) and name:
            parent_name, _, child = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            setattr(parent, child, module.get_base_layer())
    if "peft_config" in vars(model):  # peft's record of the removed adapters (else the next attach warns)
        del model.peft_config


def hidden_size(model: nn.Module) -> int:
    config = model.config
    return getattr(config, "hidden_size", None) or config.n_embd


def attention_modules(model: nn.Module) -> list[nn.Module]:
    """The self-attention modules that call transformers' attention function, in layer order: the
    innermost modules named ``*Attention`` that carry a ``layer_idx`` (BERT's ``BertSelfAttention``,
    GPT-2's ``GPT2Attention``, Llama/Gemma ``*Attention``), cross-attention excluded."""
    found = []
    for name, module in model.named_modules():
        kind = type(module).__name__
        if "Attention" not in kind or "Cross" in kind or getattr(module, "layer_idx", None) is None:
            continue
        if getattr(module, "is_cross_attention", False) or "crossattention" in name:
            continue
        found.append(module)
    inner = [m for m in found if not any(o is not m and _contains(m, o) for o in found)]
    return sorted(inner, key=lambda m: m.layer_idx)


def _contains(outer: nn.Module, inner: nn.Module) -> bool:
    return any(m is inner for m in outer.modules())


# Attention output projections ("after multi-head attention", Houlsby et al. 2019), by module-name
# suffix, for the families transformers names consistently; TuningConfig options override.
ATTENTION_OUTPUT_SUFFIXES = (
    "attention.output.dense",  # BERT, RoBERTa, ELECTRA, DeBERTa
    "self_attn.o_proj",  # Llama, Gemma, Mistral, Qwen
    "attn.c_proj",  # GPT-2
    "self_attn.out_proj",  # OPT, BART
    "attention.dense",  # GPT-NeoX, Phi
)


def find_modules(
    model: nn.Module, suffixes: tuple[str, ...] | list[str], what: str
) -> list[tuple[str, nn.Module]]:
    """Modules whose name ends with one of ``suffixes``. Raises ValueError naming the candidates."""
    found = [
        (name, module)
        for name, module in model.named_modules()
        if any(name == s or name.endswith("." + s) for s in suffixes) and CONTAINER not in name
    ]
    if not found:
        linear = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, nn.Linear)})
        raise ModelError(
            f"no {what} in {type(model).__name__} (looked for names ending in {', '.join(suffixes)}); "
            f"pass the module names as target_modules (its linear layers are named: {', '.join(linear)})"
        )
    return found
