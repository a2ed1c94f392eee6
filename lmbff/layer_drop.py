"""Layer dropping and intermediate-layer distillation, in one place (issue 38; offsite-tuning's emulator,
a layer-dropped copy of a model that stands in for it, is the same machinery).

- :func:`kept_layers` and :func:`drop_layers`: a copy of a transformer with every k-th layer kept (TinyBERT's
  uniform mapping, Jiao et al. 2020: student layer m learns from teacher layer m*k, so the teacher's last
  layer is always kept), built from the model's own config with fewer layers.
- :class:`LayerTaps`: what a forward pass leaves at each layer (the embedding output, every layer's
  output, every layer's attention probabilities), read by forward hooks, so that any forward pass (the
  prompt model's own scoring) can be tapped without changing how it is called.
- :func:`intermediate_losses`: TinyBERT's hidden-state and attention losses between a teacher's tapped
  layers and a student's, layer to layer through the kept indices.

Why by hand: transformers prunes attention heads but not whole layers, and peft has no layer dropping;
TinyBERT's losses exist only in its research code.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

from .errors import ConfigError, ModelError


def transformer_layers(model: nn.Module) -> nn.ModuleList:
    """The model's stack of transformer layers: the longest ``nn.ModuleList`` whose length is the
    config's number of layers (``model.layers`` in Gemma and Llama, ``transformer.h`` in GPT-2,
    ``encoder.layer`` in BERT).

    Raises:
        ModelError: no such list (not a transformer this module knows how to cut).
    """
    count = getattr(model.config, "num_hidden_layers", None)
    for _, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) == count:
            return module
    raise ModelError(f"{type(model).__name__}: no list of {count} transformer layers to drop layers from")


def layer_path(model: nn.Module) -> str:
    """The dotted name of :func:`transformer_layers` inside ``model``."""
    layers = transformer_layers(model)
    return next(name for name, module in model.named_modules() if module is layers)


def kept_layers(num_layers: int, every: int) -> list[int]:
    """The 0-based indices of the layers kept when every ``every``-th layer is kept, counted so that the
    last layer is always among them (TinyBERT's g(m) = m * k)."""
    if not isinstance(every, int) or isinstance(every, bool) or not 1 <= every <= num_layers:
        raise ConfigError(f"keep every k-th layer: k must be an integer in [1, {num_layers}], got {every!r}")
    return list(range(num_layers - 1, -1, -every))[::-1]


def drop_layers(
    model: nn.Module, keep: Sequence[int], weights: dict[str, torch.Tensor] | None = None
) -> nn.Module:
    """A new model of the same class with only the layers ``keep`` (in order), every other weight (the
    embeddings, the final norm, the output layer) copied from ``weights`` (default: the model's own
    state dict). Its config says the new number of layers, and per-layer settings (Gemma's sliding or
    full attention per layer) follow the kept layers.

    Raises:
        ConfigError: indices out of range, repeated or out of order; ModelError: not a transformer.
    """
    layers = transformer_layers(model)
    keep = list(keep)
    if not keep or sorted(set(keep)) != keep or keep[0] < 0 or keep[-1] >= len(layers):
        raise ConfigError(f"layers to keep must be increasing indices in [0, {len(layers) - 1}], got {keep}")
    prefix = layer_path(model)
    config = copy.deepcopy(model.config)
    config.num_hidden_layers = len(keep)
    if isinstance(getattr(config, "layer_types", None), list):
        config.layer_types = [config.layer_types[i] for i in keep]
    renamed = {}
    for name, tensor in (model.state_dict() if weights is None else weights).items():
        if name.startswith(prefix + "."):
            index, _, rest = name[len(prefix) + 1 :].partition(".")
            if int(index) not in keep:
                continue
            name = f"{prefix}.{keep.index(int(index))}.{rest}"
        renamed[name] = tensor
    dtype = next(model.parameters()).dtype
    student = type(model)(config).to(dtype)
    missing, unexpected = student.load_state_dict(renamed, strict=False)
    tied = {name for name, _ in student.named_parameters(remove_duplicate=False)} - set(
        dict(student.named_parameters())
    )
    if [m for m in missing if m not in tied] or unexpected:
        raise ModelError(f"dropping layers left {missing[:3]} unset and {unexpected[:3]} unused")
    for index, layer in enumerate(transformer_layers(student)):  # caches and masks index layers by position
        for module in layer.modules():
            if hasattr(module, "layer_idx"):
                module.layer_idx = index
    return student.eval()


def _attention_of(layer: nn.Module) -> nn.Module | None:
    """The layer's attention module: the first one whose class says so (Gemma3Attention, GPT2Attention,
    BertAttention)."""
    return next((m for m in layer.modules() if type(m).__name__.endswith("Attention")), None)


class LayerTaps:
    """Forward hooks on a model's embedding and transformer layers; while active (``with``), each forward
    pass leaves ``hidden`` (the embedding output, then each layer's output: layers + 1 tensors) and
    ``attentions`` (each layer's attention probabilities, batch x heads x queries x keys).

    Attention probabilities are only returned by eager attention: entering switches the model to it and
    leaving switches back."""

    def __init__(self, model: nn.Module, attentions: bool = True):
        self.model, self.want_attentions = model, attentions
        self.hidden: list[torch.Tensor] = []
        self.attentions: list[torch.Tensor] = []
        self._handles: list = []
        self._implementation = None

    def __enter__(self) -> LayerTaps:
        embedding = self.model.get_input_embeddings()
        layers = transformer_layers(self.model)
        self._handles.append(embedding.register_forward_hook(self._keep_embedding))
        for layer in layers:
            self._handles.append(layer.register_forward_hook(self._keep_hidden))
            attention = _attention_of(layer) if self.want_attentions else None
            if self.want_attentions and attention is None:
                raise ModelError(f"{type(layer).__name__} has no attention module to read")
            if attention is not None:
                self._handles.append(attention.register_forward_hook(self._keep_attention))
        if self.want_attentions:
            self._implementation = self.model.config._attn_implementation
            self.model.set_attn_implementation("eager")
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        if self._implementation is not None:
            self.model.set_attn_implementation(self._implementation)
            self._implementation = None

    def clear(self) -> None:
        self.hidden, self.attentions = [], []

    def _keep_embedding(self, module, args, output) -> None:
        self.hidden = [output]  # a new forward pass starts at the embedding
        self.attentions = []

    def _keep_hidden(self, module, args, output) -> None:
        self.hidden.append(output[0] if isinstance(output, tuple) else output)

    def _keep_attention(self, module, args, output) -> None:
        weights = output[1] if isinstance(output, tuple) and len(output) > 1 else None
        if weights is None or weights.dim() != 4:
            raise ModelError(f"{type(module).__name__} returned no attention probabilities")
        self.attentions.append(weights)


def intermediate_losses(
    teacher: LayerTaps, student: LayerTaps, keep: Sequence[int], mask: torch.Tensor
) -> dict[str, torch.Tensor]:
    """TinyBERT's intermediate losses (Jiao et al. 2020, eq. 7 to 9) between a teacher's taps and a
    student's whose layer m is the teacher's layer ``keep[m]``, over the real (unpadded) tokens of
    ``mask`` (batch x tokens):

    - ``embedding`` and ``hidden``: the mean squared error of the embedding output and of each student
      layer's output against its teacher layer's, each divided by the teacher's mean square there.
      TinyBERT uses the plain error (its hidden states are layer-normalised); a decoder's residual stream
      grows from layer to layer (on Gemma, to hundreds), so without the division the last layers would
      drown the others and the prediction loss.
    - ``attention``: the mean squared error of the attention probabilities over real queries (TinyBERT
      reads the scores before the softmax, which eager attention does not return).

    Raises:
        ModelError: the taps do not line up (another model, or a forward pass that was not tapped).
    """
    if len(student.hidden) != len(keep) + 1 or len(teacher.hidden) <= max(keep) + 1:
        raise ModelError(
            f"tapped {len(student.hidden)} student and {len(teacher.hidden)} teacher hidden states "
            f"for {len(keep)} kept layers"
        )
    real = mask.to(torch.float32).unsqueeze(-1)
    tokens = real.sum().clamp_min(1.0)

    def relative_error(ours: torch.Tensor, theirs: torch.Tensor) -> torch.Tensor:
        ours, theirs = ours.float(), theirs.float().detach()
        if ours.shape != theirs.shape:
            raise ModelError(
                f"student features {tuple(ours.shape)} against the teacher's {tuple(theirs.shape)}"
            )
        error = ((ours - theirs) ** 2 * real).sum() / (tokens * ours.shape[-1])
        scale = (theirs**2 * real).sum() / (tokens * ours.shape[-1])
        return error / scale.clamp_min(1e-6)

    losses = {"embedding": relative_error(student.hidden[0], teacher.hidden[0])}
    losses["hidden"] = torch.stack(
        [relative_error(student.hidden[m + 1], teacher.hidden[t + 1]) for m, t in enumerate(keep)]
    ).mean()
    if student.attentions and teacher.attentions:
        queries = mask.to(torch.float32)[:, None, :, None]  # batch x 1 x queries x 1
        terms = []
        for m, t in enumerate(keep):
            ours, theirs = student.attentions[m].float(), teacher.attentions[t].float().detach()
            if ours.shape != theirs.shape:
                raise ModelError(
                    f"student attention {tuple(ours.shape)} against the teacher's {tuple(theirs.shape)}"
                )
            per_query = ((ours - theirs) ** 2).sum(-1, keepdim=True)  # over keys: each row sums to 1
            terms.append((per_query * queries).sum() / (queries.sum() * ours.shape[1]).clamp_min(1.0))
        losses["attention"] = torch.stack(terms).mean()
    return losses
