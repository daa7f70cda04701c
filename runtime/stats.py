"""Latency statistics: percentiles with bootstrap confidence intervals, in milliseconds."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

PERCENTILES = (50, 90, 95, 99)
_BOOTSTRAP_ROUNDS = 1000
_CHUNK = 100


def bootstrap_ci(values: np.ndarray, q: float, *, level: float = 0.95, seed: int = 0
                 ) -> tuple[float, float]:
    """Percentile bootstrap interval for the ``q``-th percentile of ``values``.

    Resamples in chunks so 10^5 timings do not need a 10^8-element index matrix.
    """
    rng = np.random.default_rng(seed)
    estimates = []
    for _ in range(_BOOTSTRAP_ROUNDS // _CHUNK):
        idx = rng.integers(0, len(values), size=(_CHUNK, len(values)))
        estimates.append(np.percentile(values[idx], q, axis=1))
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(np.concatenate(estimates), [tail, 100 - tail])
    return float(low), float(high)


def summarize(times_ns: Sequence[int]) -> dict[str, float | list[float]]:
    """p50/p90/p95/p99, mean, std, min, max and 95 % bootstrap intervals of p50 and p99 (ms).

    Raises:
        ValueError: fewer than two timings.
    """
    if len(times_ns) < 2:
        raise ValueError(f"Latency statistics need at least 2 timed runs, got {len(times_ns)}.")
    ms = np.asarray(times_ns, dtype=np.float64) / 1e6
    stats: dict[str, float | list[float]] = {
        f"p{q}": float(np.percentile(ms, q)) for q in PERCENTILES}
    stats |= {"mean": float(ms.mean()), "std": float(ms.std(ddof=1)), "min": float(ms.min()),
              "max": float(ms.max()), "count": float(len(ms))}
    stats["p50_ci95"] = list(bootstrap_ci(ms, 50))
    stats["p99_ci95"] = list(bootstrap_ci(ms, 99))
    return stats
