"""Soft prompts placed by a forward hook on the input embeddings, after the leading special tokens."""

from __future__ import annotations

import torch
from torch import nn

from ...errors import ConfigError
from ..common import ParamGroups, freeze, group
from ..injection import add_hook, container

# The container key stays "prompt" (the backend's former name): saved states name their tensors by it.
KEY = "prompt"
_INIT_VOCAB = 5000  # Lester et al.: initialise from the embeddings of the 5,000 most common tokens


class SoftPrompt(nn.Module):
    def __init__(self, embeddings: torch.Tensor, start: int = 1, placeholder: int = 0):
        super().__init__()
        self.embeddings = nn.Parameter(embeddings)
        self.start, self.placeholder = start, placeholder

    def place(self, input_ids: torch.Tensor, embedded: torch.Tensor) -> torch.Tensor:
        n, start = self.embeddings.shape[0], self.start
        slots = input_ids[:, start : start + n]
        if slots.shape[1] != n or not bool((slots == self.placeholder).all()):
            raise ConfigError(
                f"prompt tuning: the input has no {n} reserved positions after the leading special tokens; "
                "encode it with the PromptModel the soft prompt was prepared for"
            )
        soft = self.embeddings.to(embedded.dtype).unsqueeze(0).expand(embedded.shape[0], -1, -1)
        return torch.cat([embedded[:, :start], soft, embedded[:, start + n :]], dim=1)


def apply(config, model: nn.Module) -> ParamGroups:
    freeze(model)
    embed = model.get_input_embeddings()
    generator = torch.Generator().manual_seed(0)
    vocab = min(_INIT_VOCAB, embed.weight.shape[0])
    ids = torch.randint(0, vocab, (config.length,), generator=generator)
    with torch.no_grad():  # the embedding module's own output: includes any scaling (Gemma)
        init = embed(ids.to(embed.weight.device)).detach().clone().float()
    soft = SoftPrompt(init)
    container(model)[KEY] = soft

    def insert(module, args, output):
        return soft.place(args[0], output)

    add_hook(model, embed.register_forward_hook(insert))
    return group([soft.embeddings], config.learning_rate)


def prepare(config, scorer) -> None:
    encoder = scorer.encoder
    encoder.virtual_tokens = config.length
    soft = container(scorer.base_lm)[KEY]
    soft.start, soft.placeholder = len(scorer.adapter.leading_ids), scorer.adapter.pad_token_id
