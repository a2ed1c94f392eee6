"""The machine record and CPU time that every run's metrics carry beside its wall-clock time."""

import time

import torch

from lmbff.machine import cpu_seconds, describe_machine
from lmbff.precision import bf16_native


def test_cpu_seconds_count_work_and_not_waiting():
    before = cpu_seconds()
    time.sleep(0.3)  # a paused or waiting process uses no CPU time
    slept = cpu_seconds() - before
    before, deadline = cpu_seconds(), time.perf_counter() + 0.3
    while time.perf_counter() < deadline:
        pass
    busy = cpu_seconds() - before
    assert slept < 0.1 and busy > 0.15


def test_describe_machine_names_the_cpu_and_its_bf16_support():
    machine = describe_machine()
    assert isinstance(machine["cpu"], str) and machine["cpu"]
    assert machine["torch_threads"] == torch.get_num_threads() and machine["torch"] == torch.__version__
    assert machine["cpu_bf16_native"] == bf16_native("cpu")
    assert machine["gpu"] is None or isinstance(machine["gpu"], str)
