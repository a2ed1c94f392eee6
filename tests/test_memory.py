"""Peak memory of a stretch of work."""

import sys

import pytest

from lmbff.memory import PeakMemory


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the high-water-mark reset is Linux's")
def test_peak_memory_sees_a_touched_allocation_and_resets():
    memory = PeakMemory()
    block = bytearray(150 * 2**20)
    block[::4096] = b"x" * len(block[::4096])  # touch every page so it is resident
    assert memory.above_start_mb() >= 140
    del block
    again = PeakMemory()  # a new measurement starts from the current level, not the old peak
    assert again.above_start_mb() < 140
