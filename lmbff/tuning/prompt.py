"""Prompt tuning (Lester et al. 2021): n trainable soft tokens at the start of every input.

Written by hand because peft's prompt tuning wraps the model and prepends the soft tokens itself,
which shifts every position the cloze prompt reads (mask, label words) and cannot be combined with
other methods. Here the encoder reserves n placeholder positions right after the leading special
tokens, and a forward hook on the input embeddings puts the soft tokens there: positions, padding
and the attention mask stay the encoder's, and it composes with every other backend.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from .base import ParamGroups, TuningConfig, freeze, group, register
from .injection import add_hook, container

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
            raise ValueError(
                f"prompt tuning: the input has no {n} reserved positions after the leading special tokens; "
                "encode it with the PromptModel the soft prompt was prepared for"
            )
        soft = self.embeddings.to(embedded.dtype).unsqueeze(0).expand(embedded.shape[0], -1, -1)
        return torch.cat([embedded[:, :start], soft, embedded[:, start + n :]], dim=1)


@register
@dataclass
class PromptTuningConfig(TuningConfig):
    backend = "prompt"
    length: int = field(default=20, metadata={"help": "soft tokens (Lester et al.: 20 to 100)"})
    # Soft tokens move far from their initial word embeddings; Lester et al. use 0.3 with Adafactor.
    learning_rate: float = 3e-2

    def apply(self, model: nn.Module) -> ParamGroups:
        freeze(model)
        embed = model.get_input_embeddings()
        generator = torch.Generator().manual_seed(0)
        vocab = min(_INIT_VOCAB, embed.weight.shape[0])
        ids = torch.randint(0, vocab, (self.length,), generator=generator)
        with torch.no_grad():  # the embedding module's own output: includes any scaling (Gemma)
            init = embed(ids.to(embed.weight.device)).detach().clone().float()
        soft = SoftPrompt(init)
        container(model)["prompt"] = soft

        def insert(module, args, output):
            return soft.place(args[0], output)

        add_hook(model, embed.register_forward_hook(insert))
        return group([soft.embeddings], self.learning_rate)

    def prepare(self, scorer) -> None:
        encoder = scorer.encoder
        encoder.virtual_tokens = self.length
        soft = container(scorer.base_lm)["prompt"]
        soft.start, soft.placeholder = len(scorer.adapter.leading_ids), scorer.adapter.pad_token_id
