"""Scoring across processes: under ``torchrun`` / ``accelerate launch`` every process scores its share of
the examples and all of them end with every score, in the examples' order, identical to one process's.

The examples are sorted by length and cut into the same batches as in one process (so every example is
padded and scored exactly as it would be alone); the batches are dealt out to the processes in turn,
and the scores are gathered as tensors (never pickled). Only the main process writes files
(:func:`is_main_process`). One process (no ``WORLD_SIZE`` above 1) touches no distributed machinery.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch


def world_size() -> int:
    """How many processes the launcher started (1 without a launcher)."""
    return max(int(os.environ.get("WORLD_SIZE", "1") or 1), 1)


def _state():
    """Accelerate's process state. On CPU it must be asked for as such: otherwise processes started by
    torchrun without GPUs each take themselves to be alone."""
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def rank() -> int:
    return _state().process_index if world_size() > 1 else 0


def is_main_process() -> bool:
    return rank() == 0


def device() -> torch.device:
    """The device this process computes on: its own GPU under a launcher, the GPU when there is one,
    else the CPU."""
    if world_size() > 1:
        return _state().device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def my_batches(batches: Sequence, wrapped: bool = False) -> list[int]:
    """Indices of the batches this process scores: every ``world``-th from its rank. All of them while
    a data-parallel wrapper holds the model (its forward passes synchronise, so every process must run
    the same ones)."""
    world = world_size()
    if world == 1 or wrapped:
        return list(range(len(batches)))
    return list(range(rank(), len(batches), world))


def gather_rows(index: torch.Tensor, rows: torch.Tensor, total: int, wrapped: bool = False) -> torch.Tensor:
    """Every process's scored rows put together: ``rows[i]`` is the score of example ``index[i]``;
    returns (total, C) on every process. Nothing is exchanged in one process or while every process
    scored everything."""
    out = torch.zeros((total, rows.shape[1]), dtype=rows.dtype)
    if world_size() == 1 or wrapped:
        out[index] = rows.cpu()
        return out
    from accelerate.utils import gather, pad_across_processes

    here = _state().device
    count = gather(torch.tensor([len(index)], device=here)).cpu()
    padded_index = pad_across_processes(index.to(here), dim=0, pad_index=-1)
    padded_rows = pad_across_processes(rows.to(here), dim=0)
    all_index, all_rows = gather(padded_index).cpu(), gather(padded_rows).cpu()
    width = padded_index.shape[0]
    for process, n in enumerate(count.tolist()):
        start = process * width
        out[all_index[start : start + n]] = all_rows[start : start + n]
    return out
