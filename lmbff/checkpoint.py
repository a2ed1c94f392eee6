"""Resumable training checkpoints: the loop's state (:class:`_LoopState`) and :class:`Checkpoint`, which
writes it (trainable parameters, best parameters, optimizer moments, every random state) as safetensors
plus JSON, replaced atomically, and reads it back for ``--resume``. Never pickled."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from .errors import StateError
from .files import read_safetensors


class Trainable(Protocol):
    """What a checkpoint reads of a trainer (:class:`lmbff.train.Trainer`)."""

    params: list
    model: object
    args: object
    rest_dtype: torch.dtype

    def trainable_state(self) -> dict[str, torch.Tensor]: ...


@dataclass
class _LoopState:
    """Everything the loop carries from step to step (what a checkpoint must restore)."""

    order: list[int]
    history: list[dict]
    generator: torch.Generator
    demo_rng: np.random.Generator
    step: int = 0
    best_step: int = 0
    best_dev: float | None = None
    best: list[torch.Tensor] | None = None
    seconds: float = 0.0  # training so far, over every process that worked on the run
    cpu_seconds: float = 0.0


class Checkpoint:
    """A resumable checkpoint: safetensors for tensors, JSON for the rest, replaced atomically.

    Never pickled: optimizer moments and random states are stored as plain tensors.
    """

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)

    @property
    def _old(self) -> Path:
        return self.folder.with_name(self.folder.name + ".old")

    def recover(self) -> None:
        """Finish or undo an update that a crash interrupted, and remove its leftovers.

        An update writes a staging folder, renames the checkpoint to ``<name>.old``, renames the staging
        folder into place and removes ``.old``. A crash between the two renames leaves only ``.old``:
        it is the last complete checkpoint and is put back. Staging folders are half-written: removed."""
        if not self.folder.parent.is_dir():
            return
        if not (self.folder / "state.json").exists() and (self._old / "state.json").exists():
            shutil.rmtree(self.folder, ignore_errors=True)
            os.replace(self._old, self.folder)
        shutil.rmtree(self._old, ignore_errors=True)
        for staged in self.folder.parent.glob(f".{self.folder.name}.*"):
            shutil.rmtree(staged, ignore_errors=True)

    def exists(self) -> bool:
        self.recover()
        return (self.folder / "state.json").exists()

    def save(self, trainer: Trainable, optimizer: torch.optim.Optimizer, loop: _LoopState) -> None:
        from safetensors.torch import save_file

        self.recover()
        self.folder.parent.mkdir(parents=True, exist_ok=True)
        names = [name for name, _ in trainer.trainable_state().items()]
        staged = Path(tempfile.mkdtemp(dir=self.folder.parent, prefix=f".{self.folder.name}."))
        try:
            save_file(
                {n: p.detach().contiguous() for n, p in zip(names, trainer.params, strict=True)},
                str(staged / "params.safetensors"),
            )
            if loop.best is not None:
                save_file(
                    {n: t.contiguous() for n, t in zip(names, loop.best, strict=True)},
                    str(staged / "best.safetensors"),
                )
            optimizer_state = optimizer.state_dict()
            moments = {
                f"{index}.{key}": value.contiguous()
                for index, state in optimizer_state["state"].items()
                for key, value in state.items()
            }
            moments["rng.torch"] = torch.get_rng_state()
            moments["rng.order"] = loop.generator.get_state()
            device = trainer.model.device
            if device.type == "cuda":  # dropout on a GPU draws from that GPU's generator, not the CPU's
                moments["rng.cuda"] = torch.cuda.get_rng_state(device)
            save_file(moments, str(staged / "optimizer.safetensors"))
            state = {
                "step": loop.step,
                "best_step": loop.best_step,
                "best_dev": loop.best_dev,
                "order": loop.order,
                "history": loop.history,
                "demo_rng": loop.demo_rng.bit_generator.state,
                "param_groups": optimizer_state["param_groups"],
                "parameter_names": names,
                "arguments": asdict(trainer.args),
                "precision": str(trainer.rest_dtype),
                "seconds": loop.seconds,
                "cpu_seconds": loop.cpu_seconds,
            }
            (staged / "state.json").write_text(json.dumps(state))
            if self.folder.exists():
                os.replace(self.folder, self._old)
            os.replace(staged, self.folder)
            shutil.rmtree(self._old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(staged, ignore_errors=True)
            raise

    def load(self, trainer: Trainable, optimizer: torch.optim.Optimizer, loop: _LoopState) -> _LoopState:
        """Restore parameters, optimizer and random states. Raises ValueError when the checkpoint was
        made with other training arguments or other trainable parameters."""

        state = json.loads((self.folder / "state.json").read_text())
        names = list(trainer.trainable_state())
        if state["parameter_names"] != names:
            raise StateError(f"{self.folder}: the checkpoint trains other parameters than this run")
        made_in = state.get("precision", str(torch.float32))
        if made_in != str(trainer.rest_dtype):
            raise StateError(
                f"{self.folder}: the checkpoint was made with weights in {made_in}, this run's are in "
                f"{trainer.rest_dtype}; resume with the precision it was started with, or choose "
                "another --out"
            )
        # a checkpoint from before min_epochs existed was made without it (0: max_steps as given)
        made_with = {"min_epochs": 0.0, **state["arguments"]}
        if made_with != asdict(trainer.args):
            raise StateError(
                f"{self.folder}: the checkpoint was made with other training arguments: "
                f"{made_with} (this run: {asdict(trainer.args)})"
            )
        params = read_safetensors(str(self.folder / "params.safetensors"))
        with torch.no_grad():
            for name, p in zip(names, trainer.params, strict=True):
                p.copy_(params[name])
        tensors = read_safetensors(str(self.folder / "optimizer.safetensors"))
        torch.set_rng_state(tensors.pop("rng.torch"))
        loop.generator.set_state(tensors.pop("rng.order"))
        cuda_state = tensors.pop("rng.cuda", None)  # absent: made on the CPU, or before it was saved
        device = trainer.model.device
        if cuda_state is not None and device.type == "cuda":
            torch.cuda.set_rng_state(cuda_state, device)
        optimizer_state: dict = {"state": {}, "param_groups": state["param_groups"]}
        for key, value in tensors.items():
            index, name = key.split(".", 1)
            optimizer_state["state"].setdefault(int(index), {})[name] = value
        optimizer.load_state_dict(optimizer_state)
        loop.demo_rng.bit_generator.state = state["demo_rng"]
        loop.order, loop.history, loop.step = state["order"], state["history"], state["step"]
        loop.best_step, loop.best_dev = state["best_step"], state["best_dev"]
        # checkpoints from before these were recorded: their earlier time is not known, counted as 0
        loop.seconds, loop.cpu_seconds = state.get("seconds", 0.0), state.get("cpu_seconds", 0.0)
        if (self.folder / "best.safetensors").exists():
            best = read_safetensors(str(self.folder / "best.safetensors"))
            loop.best = [best[name] for name in names]
        return loop
