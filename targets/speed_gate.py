"""The speed gate: a quantized artifact becomes a target's default only when it is measured
faster than FP32 on that target, by more than the measurement's own noise.

INT8 is often slower than FP32: unfused Q/DQ pairs around small layers, a CPU without VNNI,
dynamic quantization on a CNN. Peers ship it anyway. Here both models run in one process on
the same inputs with the same threads, in interleaved rounds (the order flips every round, so
neither always runs on a warmer cache or a quieter machine); each round gives each model a
median latency, and the verdict reads the median over rounds of FP32/quantized.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from frugalml.errors import TargetError

MIN_MARGIN = 0.03  # below 3 % a "speed-up" is within what repeated runs of one model vary by


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SpeedVerdict:
    """Per-round medians of both models, the speed-up, the noise, and the decision."""

    fp32_p50_ms: tuple[float, ...]
    quantized_p50_ms: tuple[float, ...]
    speedup: float
    noise: float
    margin: float
    faster: bool
    why: str
    settings: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (for manifests and reports)."""
        return dataclasses.asdict(self)


def judge(fp32_p50_ms: Sequence[float], quantized_p50_ms: Sequence[float], *,
          min_margin: float = MIN_MARGIN) -> SpeedVerdict:
    """Decide from per-round medians: faster only if the median speed-up beats 1 + margin.

    The margin is the larger of ``min_margin`` and the noise: the relative spread of FP32's
    own round medians (max / min - 1), i.e. how much the same model varied in this run.

    Raises:
        TargetError: no rounds, rounds of different counts, or non-positive latencies.
    """
    fp32, quant = tuple(map(float, fp32_p50_ms)), tuple(map(float, quantized_p50_ms))
    if not fp32 or len(fp32) != len(quant) or min(fp32 + quant) <= 0:
        raise TargetError(f"The speed gate needs the same number (>= 1) of positive round "
                          f"medians for both models; got {len(fp32)} and {len(quant)}.")
    speedup = statistics.median(f / q for f, q in zip(fp32, quant, strict=True))
    noise = max(fp32) / min(fp32) - 1.0
    margin = max(min_margin, noise)
    faster = speedup > 1.0 + margin
    why = (f"the quantized model ran at {speedup:.2f}x FP32 speed (median of {len(fp32)} "
           f"interleaved rounds; FP32 varied {noise:.1%} between rounds)")
    why += (", faster beyond noise: it ships as the default" if faster else
            f", not faster by more than {margin:.1%}: FP32 stays the default")
    return SpeedVerdict(fp32_p50_ms=fp32, quantized_p50_ms=quant, speedup=speedup,
                        noise=noise, margin=margin, faster=faster, why=why)


def measure_speed(fp32: Path, quantized: Path, feeds: Mapping[str, np.ndarray], *,
                  backend: str = "onnxruntime", threads: int = 1, rounds: int = 5,
                  runs: int = 20, min_margin: float = MIN_MARGIN) -> SpeedVerdict:
    """Time both model files in this process on ``feeds`` and :func:`judge` them.

    Raises:
        TargetError: fewer than 1 round or run, or the backend cannot open a model.
    """
    from frugalml.runtime.backends import get_backend

    if rounds < 1 or runs < 1:
        raise TargetError(f"The speed gate needs rounds >= 1 and runs >= 1; got {rounds}, "
                          f"{runs}.")
    opener = get_backend(backend)
    sessions = [opener.open(Path(p), threads=threads) for p in (fp32, quantized)]
    try:
        for session in sessions:  # warm-up: first runs allocate and pick kernels
            for _ in range(3):
                session.run(feeds)
        medians: list[list[float]] = [[], []]
        for r in range(rounds):
            for i in ((0, 1) if r % 2 == 0 else (1, 0)):
                medians[i].append(_median_ms(sessions[i], feeds, runs))
    finally:
        for session in sessions:
            session.close()
    verdict = judge(medians[0], medians[1], min_margin=min_margin)
    return dataclasses.replace(verdict, settings={
        "backend": backend, "threads": threads, "rounds": rounds, "runs_per_round": runs,
        "input_shapes": {k: list(v.shape) for k, v in feeds.items()}})


def _median_ms(session: Any, feeds: Mapping[str, np.ndarray], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(feeds)
        times.append(time.perf_counter() - start)
    return 1000.0 * statistics.median(times)
