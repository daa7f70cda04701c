"""The speed protocol on scripted latencies: every verdict, load handling, the time cap and
the interval's coverage are checked without timing anything real."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from frugalml.deploy.result import CandidateResult
from frugalml.deploy.select import select_native
from frugalml.report.deploy_md import decision_line
from frugalml.runtime.cpuload import LoadMeter
from frugalml.runtime.speed import Plan, Verdict, classify, compare, describe, interval


class Clock:
    """Fake monotonic time that each scripted model call advances by its latency."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class ScriptedLoad(LoadMeter):
    """Other processes' cores per round, from a list (then idle)."""

    def __init__(self, per_round: list[float]) -> None:
        self.per_round = iter(per_round)
        self.samples = 0

    def sample(self) -> tuple[float, float, float]:
        self.samples += 1
        return (0.0, 0.0, float(self.samples))

    def others(self, before: object, after: object) -> float:  # type: ignore[override]
        return next(self.per_round, 0.0)


def _model(clock: Clock, ms: float, jitter: float = 0.02, seed: int = 0):
    rng = np.random.default_rng(seed)

    def one_round() -> float:
        value = ms * (1 + jitter * rng.standard_normal())
        clock.now += value / 1000 * 20  # a round is 20 calls
        return value
    return one_round


def _run(base_ms: float, cand_ms: float, *, plan: Plan | None = None,
         load: list[float] | None = None, jitter: float = 0.02, seed: int = 0) -> Verdict:
    clock, plan = Clock(), plan or Plan()
    return compare(_model(clock, base_ms, jitter, seed), _model(clock, cand_ms, jitter, seed + 1),
                   plan=plan, meter=ScriptedLoad(load or []), clock=clock)


def test_a_clearly_faster_candidate_is_faster_with_an_interval_around_its_ratio() -> None:
    verdict = _run(10.0, 5.0)
    assert verdict.verdict == "faster" and verdict.faster
    assert verdict.ci95 is not None and verdict.ci95[0] <= 2.0 <= verdict.ci95[1]
    assert verdict.ratio_p50 == pytest.approx(2.0, rel=0.05)
    assert verdict.rounds == Plan().min_rounds  # decided as soon as allowed
    assert "faster beyond ±3%" in verdict.why


def test_a_clearly_slower_candidate_is_slower() -> None:
    verdict = _run(10.0, 13.0)
    assert verdict.verdict == "slower" and not verdict.faster
    assert verdict.ci95 is not None and verdict.ci95[1] < 1 / 1.03


def test_the_same_speed_is_inconclusive_never_faster_or_slower() -> None:
    outcomes = {_run(10.0, 10.0, seed=s).verdict for s in range(20)}
    assert outcomes == {"inconclusive"}


def test_a_small_gain_under_noise_runs_to_the_cap_and_is_inconclusive() -> None:
    plan = Plan(max_rounds=1000, time_cap_s=5.0)
    verdict = _run(10.0, 9.8, plan=plan, jitter=0.3)
    assert verdict.verdict == "inconclusive" and "not decided within 5 s" in verdict.why
    # the cap is honoured: it stops within one round after the cap
    assert verdict.seconds < 5.0 + 2 * 10.0 / 1000 * 20 * 1.3


def test_loaded_rounds_are_repeated_counted_and_reported() -> None:
    verdict = _run(10.0, 5.0, load=[0.0, 0.9, 0.0, 1.2, 0.0])
    assert verdict.faster and verdict.repeated_rounds == 2
    assert verdict.load["max_other_cores"] == 1.2
    warning = verdict.busy_warning()
    assert warning is not None and "2 of 8 rounds repeated" in warning


def test_repeats_are_bounded_on_a_machine_that_stays_busy() -> None:
    plan = Plan(max_repeats=3)
    verdict = _run(10.0, 5.0, plan=plan, load=[1.5] * 100)
    assert verdict.repeated_rounds == 3 and verdict.faster
    assert verdict.rounds == plan.min_rounds


def test_the_interval_covers_a_known_ratio_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(1)
    covered = 0
    for _ in range(200):
        ratios = list(1.25 * np.exp(0.05 * rng.standard_normal(15)))
        low, high = interval(ratios, seed=int(rng.integers(1 << 30)))
        covered += low <= 1.25 <= high
    assert 0.88 <= covered / 200 <= 0.995


def test_classify_band_edges() -> None:
    assert classify((1.05, 1.2), 0.03) == "faster"
    assert classify((0.8, 0.95), 0.03) == "slower"
    assert classify((0.99, 1.01), 0.03) == "inconclusive"
    assert classify((0.99, 1.10), 0.03) is None


def test_verdict_round_trips_and_plan_is_validated() -> None:
    verdict = _run(10.0, 5.0)
    again = Verdict.from_dict(verdict.to_dict())
    assert again == verdict and verdict.to_dict()["faster"] is True
    with pytest.raises(ValueError, match="out of range"):
        Plan(min_rounds=1)


def test_load_meter_reads_this_machine() -> None:
    meter = LoadMeter()
    before = meter.sample()
    sum(itertools.islice(itertools.count(), 200_000))
    after = meter.sample()
    if before is None:
        pytest.skip("no /proc here")
    others = meter.others(before, after)
    assert others is not None and 0.0 <= others <= 64


def test_a_verdict_has_one_text_everywhere_it_is_shown() -> None:
    """Deploy's why, both reports' decision lines and tables, the sweep's x FP32 cell and the
    bench report all say a verdict through speed.describe (issue 33: one describe)."""
    measured = {"ratio_p50": 2.1, "ci95": [1.987, 2.291], "verdict": "faster"}
    assert describe(measured) == "2.10x FP32 (95 % CI 1.99-2.29, faster)"
    assert describe(measured, short=True) == "2.10x [1.99-2.29] faster"
    assert describe({"ratio_p50": None, "ci95": None, "verdict": "not measured"}) == (
        "not measured")
    verdict = Verdict(verdict="faster", ratio_p50=2.1, ci95=(1.987, 2.291), threshold=0.05,
                      rounds=8, repeated_rounds=0, load={}, seconds=1.0, baseline_p50_ms=2.0,
                      candidate_p50_ms=0.95, why="")
    assert verdict.describe() == describe(measured)
    shipped = {"name": "int8-static", "recipe": "int8", "backend": "onnxruntime",
               "format": "onnx", "status": "scored", "bundle": "b", "size_bytes": 1e6,
               "accuracy": {"budget_met": True, "metric": "top1", "fp32": 0.8, "value": 0.798,
                            "delta": -0.2, "failures": [], "task": "classification",
                            "items": 10},
               "speed": measured}
    assert describe(measured) in select_native([CandidateResult.from_dict(shipped)])[1]
    assert describe(measured) in decision_line("x86-amx", {
        "shipped": "int8-static", "native": True, "candidates": [shipped]})
