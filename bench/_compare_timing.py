"""Latency of every row of bench/compare_peers.py, interleaved in one process.

All rows' sessions are open at once; each round runs every row ``runs`` times in turn, so a
slow phase of the machine hits all rows alike. Batch 1, the same input for every row.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

THREADS = (1, 2)


def _open(path: Path, threads: int) -> Any:
    from frugalml.runtime.backends import get_backend

    backend = "openvino" if path.suffix == ".xml" else "onnxruntime"
    return get_backend(backend).open(path, threads=threads)


def time_rows(rows: dict[str, dict[str, Any]], feeds: Mapping[str, np.ndarray], *,
              rounds: int, runs: int) -> None:
    """Add ``latency[threads]`` (p50, p99, per-round p50s) and ``x_fp32[threads]`` (FP32 p50
    of the same backend / this row's p50) to every row that has a model."""
    timed = {name: row for name, row in rows.items() if "path" in row}
    for threads in THREADS:
        sessions = {name: _open(Path(row["path"]), threads) for name, row in timed.items()}
        samples: dict[str, list[float]] = {name: [] for name in sessions}
        round_p50: dict[str, list[float]] = {name: [] for name in sessions}
        try:
            for session in sessions.values():
                session.run(feeds)  # first run: allocations and kernel selection
            for _ in range(rounds):
                for name, session in sessions.items():
                    times = []
                    for _ in range(runs):
                        start = time.perf_counter()
                        session.run(feeds)
                        times.append(1000.0 * (time.perf_counter() - start))
                    samples[name] += times
                    round_p50[name].append(float(np.median(times)))
        finally:
            for session in sessions.values():
                session.close()
        for name, row in timed.items():
            row.setdefault("latency", {})[threads] = {
                "p50_ms": float(np.percentile(samples[name], 50)),
                "p99_ms": float(np.percentile(samples[name], 99)),
                "round_p50_ms": round_p50[name]}
    for row in timed.values():
        base = rows["fp32-ov" if Path(row["path"]).suffix == ".xml" else "fp32-ort"]
        row["x_fp32"] = {t: base["latency"][t]["p50_ms"] / row["latency"][t]["p50_ms"]
                         for t in THREADS}
