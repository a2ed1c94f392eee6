"""Prefix tuning through transformers' attention-function registry (see the package docstring)."""

from __future__ import annotations

import weakref

import torch
from torch import nn

from ...errors import ModelError
from ..common import ParamGroups, freeze, group
from ..injection import attention_modules, container, hidden_size, on_detach

ATTENTION_NAME = "lmbff_prefix"
# attention module -> (Prefixes, layer index); weak, so a discarded model takes its entries with it
_ATTACHED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class Prefixes(nn.Module):
    """Keys and values for every layer: (layers, 2, kv_heads, length, head_dim), given directly or
    produced by an MLP from ``length`` embeddings (reparameterised)."""

    def __init__(self, shape: tuple[int, int, int, int, int], hidden: int, mlp_hidden: int | None):
        super().__init__()
        self.shape = shape
        layers, two, heads, length, dim = shape
        generator = torch.Generator().manual_seed(0)
        if mlp_hidden:
            self.embedding = nn.Parameter(torch.randn(length, hidden, generator=generator) * 0.02)
            self.mlp = nn.Sequential(
                nn.Linear(hidden, mlp_hidden), nn.Tanh(), nn.Linear(mlp_hidden, layers * two * heads * dim)
            )
        else:
            self.values = nn.Parameter(torch.randn(*shape, generator=generator) * 0.02)
        self.gates: nn.ModuleList | None = None  # UniPELT: one gate per layer, from the layer input

    @property
    def reparameterized(self) -> bool:
        return hasattr(self, "mlp")

    def tensors(self) -> torch.Tensor:
        if not self.reparameterized:
            return self.values
        layers, two, heads, length, dim = self.shape
        out = self.mlp(self.embedding)  # (length, layers * 2 * heads * dim)
        return out.view(length, layers, two, heads, dim).permute(1, 2, 3, 0, 4)

    def fold(self) -> None:
        with torch.no_grad():
            values = self.tensors().detach().clone()
        del self.mlp, self.embedding
        self.values = nn.Parameter(values)


def _extend(query, key, value, mask, prefix_k, prefix_v, causal: bool):
    """Keys/values with the prefix in front, and the mask opened to it (a prefix is visible to every
    query, also under a causal or sliding-window mask)."""
    batch, n = key.shape[0], prefix_k.shape[-2]
    key = torch.cat([prefix_k.to(key.dtype), key], dim=2)
    value = torch.cat([prefix_v.to(value.dtype), value], dim=2)
    q_len, k_len = query.shape[2], key.shape[2] - n
    if mask is None:
        if causal and q_len > 1:
            mask = torch.ones(q_len, k_len, dtype=torch.bool, device=key.device).tril(k_len - q_len)
        else:
            mask = torch.ones(q_len, k_len, dtype=torch.bool, device=key.device)
        mask = mask.view(1, 1, q_len, k_len).expand(batch, 1, q_len, k_len)
    visible = torch.ones if mask.dtype == torch.bool else torch.zeros
    opened = visible((*mask.shape[:-1], n), dtype=mask.dtype, device=mask.device)
    return key, value, torch.cat([opened, mask], dim=-1)


def prefix_attention(module, query, key, value, attention_mask, **kwargs):
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    entry = _ATTACHED.get(module)
    if entry is not None:
        prefixes, layer, cache = entry
        if "tensors" not in cache or cache["tensors"] is None:
            cache["tensors"] = prefixes.tensors()
        kv = cache["tensors"][layer]  # (2, heads, length, dim)
        batch = key.shape[0]
        prefix_k = kv[0].unsqueeze(0).expand(batch, -1, -1, -1)
        prefix_v = kv[1].unsqueeze(0).expand(batch, -1, -1, -1)
        gate = cache.get("gates", {}).pop(layer, None)
        if gate is not None:  # UniPELT: the prefix scaled by its gate
            prefix_k, prefix_v = prefix_k * gate.view(-1, 1, 1, 1), prefix_v * gate.view(-1, 1, 1, 1)
        causal = kwargs.pop("is_causal", None)
        causal = getattr(module, "is_causal", False) if causal is None else causal
        key, value, attention_mask = _extend(query, key, value, attention_mask, prefix_k, prefix_v, causal)
    return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)


def _register_attention() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

    AttentionInterface.register(ATTENTION_NAME, prefix_attention)
    ALL_MASK_ATTENTION_FUNCTIONS.register(ATTENTION_NAME, sdpa_mask)


def prefix_shape(model: nn.Module, length: int) -> tuple[int, int, int, int, int]:
    config = model.config
    heads = config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or hidden_size(model) // heads
    return (config.num_hidden_layers, 2, kv_heads, length, head_dim)


def attach_prefixes(model: nn.Module, prefixes: Prefixes) -> dict:
    """Route the model's attention through :func:`prefix_attention` with these prefixes. Returns the
    per-forward cache (prefix tensors computed once per forward pass; UniPELT gates)."""
    _register_attention()
    modules = attention_modules(model)
    if len(modules) != prefixes.shape[0]:
        raise ModelError(
            f"prefix tuning found {len(modules)} attention layers in {type(model).__name__}, "
            f"expected {prefixes.shape[0]} (config.num_hidden_layers)"
        )
    cache: dict = {"gates": {}}
    for module in modules:
        _ATTACHED[module] = (prefixes, module.layer_idx, cache)

    def reset(module, args, kwargs):
        cache["tensors"] = None  # recomputed from the (reparameterised) parameters each forward pass

    box = container(model)
    box._lmbff_handles.append(model.register_forward_pre_hook(reset, with_kwargs=True))
    previous = model.config._attn_implementation
    model.set_attn_implementation(ATTENTION_NAME)

    def undo() -> None:
        for module in modules:
            _ATTACHED.pop(module, None)
        model.set_attn_implementation(previous)

    on_detach(model, undo)
    return cache


def apply(config, model: nn.Module) -> ParamGroups:
    freeze(model)
    prefixes = Prefixes(prefix_shape(model, config.length), hidden_size(model), config.mlp_hidden or None)
    prefixes.to(next(model.parameters()).device)
    container(model)["prefix"] = prefixes
    attach_prefixes(model, prefixes)
    return group(list(prefixes.parameters()), config.learning_rate)


def export(config, model: nn.Module):
    """Fold the reparameterising MLP away: the saved state holds only the prefixes."""
    prefixes = container(model)["prefix"]
    if prefixes.reparameterized:
        prefixes.fold()
    return type(config)(length=config.length, mlp_hidden=0, learning_rate=config.learning_rate)
