"""Peak resident memory of this process over a stretch of work (what reports and benchmarks print)."""

from __future__ import annotations

import contextlib
import resource
from pathlib import Path

_STATUS = Path("/proc/self/status")


def _status_kb(field: str) -> int | None:
    with contextlib.suppress(OSError):
        for line in _STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


class PeakMemory:
    """Peak resident memory from creation on.

    On Linux the kernel's high-water mark (VmHWM) is reset at creation (/proc/self/clear_refs), so work
    that follows a bigger job in the same process reports its own peak; memory the process kept from
    before still counts, so measure a phase in a fresh process for a clean figure. Elsewhere: the
    process's lifetime peak (ru_maxrss).
    """

    def __init__(self):
        with contextlib.suppress(OSError):
            Path("/proc/self/clear_refs").write_text("5")
        self.start_kb = _status_kb("VmRSS")

    def peak_mb(self) -> float:
        """Peak resident memory (MB) since creation."""
        peak = _status_kb("VmHWM")
        return (peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024

    def above_start_mb(self) -> float:
        """Peak minus the resident memory at creation (MB)."""
        return self.peak_mb() - (self.start_kb or 0) / 1024
