"""What a run ran on, and the CPU time it took: the context every timing needs.

Timings from different machines are not comparable (the same full fine-tuning step took 3.6 s on one
2-core machine of this project and 1.9 s on another), so each run's metrics name the machine. CPU time
stops while a process is paused (SIGSTOP) or waits, so ``cpu_seconds`` beside wall-clock ``seconds``
shows when a run did not have its cores to itself.
"""

from __future__ import annotations

import resource

import torch

from .precision import bf16_native

__all__ = ["cpu_seconds", "describe_machine"]


def cpu_seconds() -> float:
    """User plus system CPU time of this process so far, all its threads together (seconds)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def describe_machine() -> dict:
    """The CPU (as torch names it), its cores, torch's threads, whether it multiplies bf16 natively,
    the GPU if one is used, and torch's version."""
    capabilities = torch.cpu.get_capabilities() if hasattr(torch.cpu, "get_capabilities") else {}
    return {
        "cpu": capabilities.get("cpu_name", "unknown"),
        "physical_cores": capabilities.get("num_physical_cores"),
        "torch_threads": torch.get_num_threads(),
        "cpu_bf16_native": bf16_native("cpu"),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch": torch.__version__,
    }
