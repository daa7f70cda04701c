"""How busy the rest of the machine was while we timed something (Linux /proc; stdlib only).

A latency measured while another process competes for the cores says more about that process
than about the model. The speed protocol samples this around every round and repeats rounds
in which others used more than a set share of a core.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

# Fields of /proc/stat's "cpu" line that count as busy: user nice system idle iowait irq
# softirq steal (guest time is already inside user). Steal is the hypervisor giving our vCPU
# to someone else: a disturbance like any other.
_BUSY_FIELDS = (0, 1, 2, 5, 6, 7)


class LoadMeter:
    """Reads CPU time used by all processes and by this one; ``None`` where /proc is absent."""

    def __init__(self, stat: Path = Path("/proc/stat"), self_stat: Path = Path("/proc/self/stat"),
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._stat, self._self_stat, self._clock = stat, self_stat, clock
        self._tick = float(os.sysconf("SC_CLK_TCK")) if hasattr(os, "sysconf") else 100.0

    def sample(self) -> tuple[float, float, float] | None:
        """(busy CPU seconds of the machine, CPU seconds of this process, wall seconds)."""
        try:
            fields = self._stat.read_text().splitlines()[0].split()[1:]
            busy = sum(int(fields[i]) for i in _BUSY_FIELDS if i < len(fields))
            mine = self._self_stat.read_text().rsplit(")", 1)[1].split()
            own = int(mine[11]) + int(mine[12])  # utime, stime (all threads)
        except (OSError, IndexError, ValueError):
            return None
        return busy / self._tick, own / self._tick, self._clock()

    @staticmethod
    def others(before: tuple[float, float, float] | None,
               after: tuple[float, float, float] | None) -> float | None:
        """Cores' worth of CPU that other processes used between two samples."""
        if before is None or after is None or after[2] <= before[2]:
            return None
        used = (after[0] - before[0]) - (after[1] - before[1])
        return max(0.0, used / (after[2] - before[2]))
