"""Compare runs against a baseline: latency ratios with intervals, and noise-aware regressions.

A change counts as a regression only when the new run's p50 interval lies wholly above the
baseline's (the difference exceeds the noise the runs themselves measured) and the slowdown is
at least ``MIN_CHANGE``: on a shared machine, two runs of the same bundle drift by a few percent
between processes, more than their bootstrap intervals show, and must not trip CI.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from frugalml.errors import FrugalError
from frugalml.report.runs import Run
from frugalml.runtime.host import describe_host

MIN_CHANGE = 0.10


def machine_of(host: dict[str, Any]) -> str:
    """What must match for two latencies to be comparable: the microarchitecture (vendor,
    family, model), or the CPU name for profiles recorded before hosts carried it."""
    if host.get("family") is not None and host.get("model") is not None:
        return f"{host.get('vendor')} {host['family']}/{host['model']}"
    return str(host.get("cpu_model"))


@dataclasses.dataclass(frozen=True, slots=True)
class Comparison:
    """One run against the baseline: ratios > 1 mean slower (latency)."""

    baseline: str
    candidate: str
    p50_ratio: float
    p50_ratio_low: float
    p50_ratio_high: float
    p99_ratio: float
    noise: float
    regression: bool
    cross_host: str | None = None  # "Zen 2 -> Zen 3" when the runs came from different CPUs

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return dataclasses.asdict(self)


def _interval(profile: dict[str, Any]) -> tuple[float, float, float]:
    lat = profile["latency_ms"]
    low, high = lat.get("p50_ci95", (lat["p50"], lat["p50"]))
    return float(lat["p50"]), float(low), float(high)


def compare_runs(runs: Sequence[Run], *, cross_host: bool = False) -> list[Comparison]:
    """Compare every run after the first with the baseline run of the same key.

    The first run of each key is its baseline; a key seen once is compared with the very
    first run (e.g. INT8 against FP32, OpenVINO against ONNX Runtime).

    Raises:
        FrugalError: two runs came from different microarchitectures and ``cross_host`` is
            False (a latency difference there is the hardware's, not a regression).
    """
    baselines: dict[str, Run] = {}
    results = []
    for run in runs:
        base = baselines.get(run.key)
        if base is None:
            baselines[run.key] = run
            if run is runs[0]:
                continue
            base = runs[0]
        results.append(compare_pair(base, run, cross_host=cross_host))
    return results


def compare_pair(base: Run, new: Run, *, cross_host: bool = False) -> Comparison:
    """``new`` against ``base``: p50 ratio with its interval, p99 ratio, noise, verdict.

    Raises:
        FrugalError: the runs are from different microarchitectures and not ``cross_host``.
    """
    hosts = base.profile["host"], new.profile["host"]
    label = None
    if machine_of(hosts[0]) != machine_of(hosts[1]):
        label = f"{describe_host(hosts[0])} -> {describe_host(hosts[1])}"
        if not cross_host:
            raise FrugalError(
                f"{new.label} ran on another CPU than its baseline {base.label} ({label}): "
                "a latency difference between microarchitectures is the hardware's, not a "
                "regression. Compare runs from one machine, or pass --cross-host to compare "
                "anyway (the result is labelled cross-host).")
    b, b_low, b_high = _interval(base.profile)
    n, n_low, n_high = _interval(new.profile)
    noise = (b_high - b_low) / (2 * b) + (n_high - n_low) / (2 * n)
    ratio = n / b
    regression = n_low > b_high and ratio - 1 > max(MIN_CHANGE, noise)
    return Comparison(
        baseline=base.label, candidate=new.label, p50_ratio=ratio,
        p50_ratio_low=n_low / b_high, p50_ratio_high=n_high / b_low,
        p99_ratio=new.profile["latency_ms"]["p99"] / base.profile["latency_ms"]["p99"],
        noise=noise, regression=regression, cross_host=label)


def failing(comparisons: Sequence[Comparison], percent: float) -> list[Comparison]:
    """Regressions slower than the baseline by more than ``percent``."""
    return [c for c in comparisons if c.regression and (c.p50_ratio - 1) * 100 > percent]
