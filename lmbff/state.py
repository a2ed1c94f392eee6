"""A trained state: only the tuned parameters (safetensors) and the config that rebuilds them.

``state/trained.safetensors`` + ``state/config.json`` (``{"backend": ..., "experiment": ...}``) are what
a run leaves. :meth:`TrainedState.attach` puts a state onto a frozen base model (adding the method's
modules, overwriting the base's own tuned tensors) and returns a handle whose ``detach`` gives the
base back exactly as it was, so one loaded base serves any number of tasks in turn.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from .io import atomic_write_bytes, atomic_write_json
from .tuning import TuningConfig, config_from_dict
from .tuning.injection import detach as detach_modules

WEIGHTS, CONFIG = "trained.safetensors", "config.json"


def save_state(
    folder: str | os.PathLike, tensors: dict[str, torch.Tensor], tuning: TuningConfig, experiment: dict
):
    """Write a state atomically: the tensors first, the config (whose presence marks it complete) last."""
    from safetensors.torch import save

    folder = Path(folder)
    atomic_write_bytes(folder / WEIGHTS, save({n: t.detach().contiguous() for n, t in tensors.items()}))
    atomic_write_json(folder / CONFIG, {"backend": tuning.to_dict(), "experiment": experiment})


class StateError(ValueError):
    """A state folder that is missing files, or does not fit the model it is put on."""


@dataclass
class TrainedState:
    folder: Path
    tuning: TuningConfig
    experiment: dict
    tensors: dict[str, torch.Tensor]

    @classmethod
    def load(cls, folder: str | os.PathLike) -> TrainedState:
        """Read a state folder (never unpickles: safetensors and JSON only)."""
        from safetensors.torch import load_file

        folder = Path(folder)
        for name in (CONFIG, WEIGHTS):
            if not (folder / name).is_file():
                raise StateError(f"{folder}: no {name}; a state folder is a run's state/ (from lmbff train)")
        try:
            config = json.loads((folder / CONFIG).read_text())
            tuning = config_from_dict(config["backend"])
            experiment = config["experiment"]
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise StateError(f"{folder / CONFIG}: not a state config ({error})") from error
        return cls(folder, tuning, experiment, load_file(str(folder / WEIGHTS)))

    def attach(self, scorer) -> AttachedState:
        """Put this state on the scorer's (frozen) language model. Raises StateError when the tensors
        do not match what the backend trains on this model (another base model, another config).

        The base's own tensors that the state replaces (norms for ln, biases for bitfit, everything for
        full) are copied first so that ``detach`` can restore them: for ``full`` that is a second copy
        of the model in memory."""
        model = scorer.base_lm
        base = {name: p for name, p in model.named_parameters()}
        self.tuning.apply(model)
        self.tuning.prepare(scorer)
        params = dict(model.named_parameters())
        trained = {name for name, p in params.items() if p.requires_grad}
        attached = AttachedState(scorer, {})
        if set(self.tensors) != trained:
            attached.detach()
            extra, missing = sorted(set(self.tensors) - trained), sorted(trained - set(self.tensors))
            raise StateError(
                f"{self.folder}: the state does not fit {type(model).__name__} with backend "
                f"{self.experiment.get('backend')!r}: {len(extra)} saved tensors it does not have "
                f"({', '.join(extra[:3])}), {len(missing)} it trains that are not saved "
                f"({', '.join(missing[:3])}); "
                "is this the base model the state was trained on?"
            )
        with torch.no_grad():
            for name, tensor in self.tensors.items():
                p = params[name]
                if p.shape != tensor.shape:
                    attached.detach()
                    raise StateError(
                        f"{self.folder}: {name} has shape {tuple(tensor.shape)}, the model's {tuple(p.shape)}"
                    )
                if name in base:
                    attached.originals[name] = p.detach().clone()
                p.copy_(tensor.to(p.dtype))
        for p in model.parameters():
            p.requires_grad_(False)
        return attached


class AttachedState:
    def __init__(self, scorer, originals: dict[str, torch.Tensor]):
        self.scorer, self.originals = scorer, originals

    def detach(self) -> None:
        """Restore the base model's own tensors and remove everything the backend added."""
        model = self.scorer.base_lm
        params = dict(model.named_parameters())
        with torch.no_grad():
            for name, tensor in self.originals.items():
                params[name].copy_(tensor)
        self.originals = {}
        detach_modules(model)
        self.scorer.encoder.virtual_tokens = 0
