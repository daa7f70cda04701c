"""The soak loop shared by the runtime test (short) and bench/soak.py (long): many threads
calling one Model, every output compared with the single-threaded answer, RSS watched."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Sequence

import numpy as np

from frugalml.runtime import Model


def rss_mib() -> float:
    """Resident set size of this process now (VmRSS), MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


@dataclasses.dataclass(frozen=True)
class SoakResult:
    """What a soak measured; ``rss_growth`` is end/start - 1 after the warm-up."""

    threads: int
    calls: int
    errors: int
    mismatches: int
    rss_start_mib: float
    rss_end_mib: float
    seconds: float

    @property
    def rss_growth(self) -> float:
        return self.rss_end_mib / self.rss_start_mib - 1

    @property
    def calls_per_s(self) -> float:
        return self.calls / self.seconds


def _hammer(model: Model, inputs: Sequence[np.ndarray], expected: Sequence[dict],
            threads: int, calls: int) -> tuple[int, int]:
    """``threads`` threads x ``calls`` calls; thread t cycles through its own inputs."""
    errors, mismatches = [0] * threads, [0] * threads
    per_thread = max(1, len(inputs) // threads)

    def worker(t: int) -> None:
        for call in range(calls):
            i = (t * per_thread + call % per_thread) % len(inputs)
            try:
                out = model.run(inputs[i])
            except Exception:  # counted, not raised: the soak reports every failure
                errors[t] += 1
                continue
            if any(not np.array_equal(out[k], v) for k, v in expected[i].items()):
                mismatches[t] += 1

    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return sum(errors), sum(mismatches)


def soak(model: Model, inputs: Sequence[np.ndarray], *, threads: int, calls: int,
         warmup_calls: int = 200) -> SoakResult:
    """Warm up (so pools and caches exist), then measure RSS around ``threads x calls`` calls."""
    expected = [model.run(x) for x in inputs]
    _hammer(model, inputs, expected, threads, warmup_calls)
    start_rss, started = rss_mib(), time.perf_counter()
    errors, mismatches = _hammer(model, inputs, expected, threads, calls)
    return SoakResult(threads=threads, calls=threads * calls, errors=errors,
                      mismatches=mismatches, rss_start_mib=start_rss, rss_end_mib=rss_mib(),
                      seconds=time.perf_counter() - started)
