"""Latency profiler: cold start, warm-up, then timed runs, returned as a frozen Profile record.

Run as ``python -m frugalml.runtime.profile BUNDLE`` so every profile starts in a fresh process
(cold start and peak RSS then mean what they say).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from frugalml.runtime.host import read_host


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Profile:
    """One bundle measured on one host; times in milliseconds."""

    schema_version: int = 1
    bundle: str
    host: dict[str, Any]
    settings: dict[str, Any]
    latency_ms: dict[str, float]
    throughput_per_s: float
    cold_start_ms: dict[str, float]
    peak_rss_mib: float

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Profile:
        """Inverse of :meth:`to_dict`."""
        return cls(**data)


def peak_rss_mib() -> float:
    """This process's peak resident memory.

    NOTE: /proc/self/status VmHWM belongs to the current address space; ``ru_maxrss`` would
    carry over the parent's peak across fork+exec and report a 1 GB toolchain as ours.
    """
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def summarize(times_ns: list[int]) -> dict[str, float]:
    """Percentiles, mean, std and a 95 % confidence interval of the mean, in milliseconds."""
    ms = np.asarray(times_ns, dtype=np.float64) / 1e6
    mean, std = float(ms.mean()), float(ms.std(ddof=1)) if len(ms) > 1 else 0.0
    half = 1.96 * std / math.sqrt(len(ms))
    return {
        "p50": float(np.percentile(ms, 50)), "p90": float(np.percentile(ms, 90)),
        "p99": float(np.percentile(ms, 99)), "mean": mean, "std": std,
        "mean_ci95_low": mean - half, "mean_ci95_high": mean + half, "min": float(ms.min()),
    }


def profile_bundle(
    bundle_dir: Path, *, runs: int = 200, warmup: int = 20, threads: int = 0, sample: int = 0
) -> Profile:
    """Load the bundle (timed), run one sample (timed), warm up, then time ``runs`` runs.

    The input is one real sample from the bundle (batch 1), the way a device would see it.
    """
    from frugalml.runtime import load

    if runs < 2 or warmup < 0:
        raise ValueError(f"runs must be >= 2 and warmup >= 0, got runs={runs}, warmup={warmup}.")
    t0 = time.perf_counter_ns()
    model = load(bundle_dir, threads=threads)
    t1 = time.perf_counter_ns()
    with np.load(model.bundle_dir / model.manifest.samples_file, allow_pickle=False) as data:
        feeds = {n: data[f"input.{n}"][sample:sample + 1] for n in model.input_names}
    model.run(feeds)
    t2 = time.perf_counter_ns()
    for _ in range(warmup):
        model.run(feeds)
    times = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        model.run(feeds)
        times.append(time.perf_counter_ns() - start)
    latency = summarize(times)
    return Profile(
        bundle=model.manifest.name, host=read_host().to_dict(),
        settings={"threads": threads, "runs": runs, "warmup": warmup, "batch": 1,
                  "input_shapes": {n: list(v.shape) for n, v in feeds.items()},
                  "backend": model.manifest.target.backend},
        latency_ms=latency, throughput_per_s=1000.0 / latency["mean"],
        cold_start_ms={"load": (t1 - t0) / 1e6, "first_inference": (t2 - t1) / 1e6},
        peak_rss_mib=peak_rss_mib(),
    )


def main(argv: list[str] | None = None) -> int:
    """Profile a bundle in this process and print (or save) the Profile as JSON."""
    parser = argparse.ArgumentParser(prog="python -m frugalml.runtime.profile")
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    from frugalml.errors import FrugalError

    try:
        result = profile_bundle(args.bundle, runs=args.runs, warmup=args.warmup,
                                threads=args.threads)
    except FrugalError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    text = json.dumps(result.to_dict(), indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
