"""Profiler statistics against known latencies, phase separation, and the per-op view."""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from frugalml.runtime.profile import (
    Plan,
    Profile,
    profile_bundle,
    profile_in_fresh_process,
    time_calls,
)
from frugalml.runtime.stats import bootstrap_ci, summarize


class FakeClock:
    """A synthetic backend's clock: each call of ``run`` takes a scripted time."""

    def __init__(self, latencies_ms: list[float]) -> None:
        self.now, self.script = 0, [int(ms * 1e6) for ms in latencies_ms]
        self.calls = 0

    def __call__(self) -> int:
        return self.now

    def run(self, _feeds: object) -> None:
        self.now += self.script[self.calls % len(self.script)]
        self.calls += 1


def test_percentiles_match_known_latencies() -> None:
    clock = FakeClock([float(ms) for ms in range(1, 101)])  # 1..100 ms, once each
    times = time_calls(clock.run, [None], runs=100, duration_s=None, clock=clock)
    s = summarize(times)
    assert s["p50"] == pytest.approx(50.5) and s["p90"] == pytest.approx(90.1)
    assert s["p95"] == pytest.approx(95.05) and s["p99"] == pytest.approx(99.01)
    assert s["min"] == 1.0 and s["max"] == 100.0 and s["mean"] == pytest.approx(50.5)
    low, high = s["p50_ci95"]
    assert low < 50.5 < high and high - low < 25


def test_duration_bounds_the_timed_runs() -> None:
    clock = FakeClock([10.0])  # 10 ms per call
    times = time_calls(clock.run, [None], runs=None, duration_s=1.0, clock=clock)
    assert len(times) == 100 and set(times) == {10_000_000}


def test_bootstrap_interval_covers_a_known_median() -> None:
    rng = np.random.default_rng(1)
    values = rng.exponential(scale=10.0, size=2000)  # true median 10 ln 2 = 6.93
    low, high = bootstrap_ci(values, 50)
    assert low < 10 * np.log(2) < high


def test_cold_start_never_enters_steady_state(monkeypatch: pytest.MonkeyPatch) -> None:
    """A backend whose first call takes 300 ms and the rest 2 ms: p99 stays near 2 ms."""
    calls = []

    def run(_feeds: object) -> dict:
        time.sleep(0.3 if not calls else 0.002)
        calls.append(1)
        return {}

    fake = SimpleNamespace(run=run, close=lambda: None, load_ms={"verify": 1.0, "compile": 2.0},
                           manifest=SimpleNamespace(name="fake"), backend="fake",
                           roles=SimpleNamespace(states={}))
    monkeypatch.setattr("frugalml.runtime.load", lambda *a, **k: fake)
    monkeypatch.setattr("frugalml.runtime.bench_inputs.bench_feeds", lambda *a, **k: [{}])
    prof = profile_bundle(Path("unused"), plan=Plan(warmup_runs=3, runs=50, op_profile=False))
    assert prof.cold_start_ms["first_inference"] >= 300
    assert prof.latency_ms["max"] < 100 and prof.settings["runs"] == 50
    assert prof.settings["warmup_runs"] == 3


def test_real_int8_bundle_profile_has_per_op_and_kernel_view(int8_bundle: Path) -> None:
    # In a fresh process, as deploy profiles: in this one, after the session's deploy, loading
    # the model reused freed pages and its RSS growth (model_mib) read 0.
    prof = Profile.from_dict(profile_in_fresh_process(
        int8_bundle, ["--warmup", "2", "--runs", "10", "--streams", "2"]))
    kernels = prof.ops["kernels"]
    # The manifest counted these kernels statically; the profiler saw them execute. How many
    # run int8 depends on the target's INT8 format (U8S8 on AVX2, S8S8 on VNNI).
    counted = json.loads((int8_bundle / "manifest.json").read_text())["kernels"]
    assert kernels["quantized"] == counted["int8"] >= 6 and kernels["float"] == counted["float"]
    types = {t["op_type"]: t for t in prof.ops["by_type"]}
    assert types["MatMulIntegerToFloat"]["kernel"] == "quantized"
    assert types["MatMulIntegerToFloat"]["nodes"] == counted["MatMulIntegerToFloat"]
    assert sum(t["share"] for t in prof.ops["by_type"]) == pytest.approx(1.0)
    assert prof.settings["distinct_inputs"] > 1  # fresh inputs, not one pre-filled tensor
    assert set(prof.streams_per_s) == {"1", "2"} and min(prof.streams_per_s.values()) > 0
    assert prof.cold_start_ms["compile"] > 0 and prof.model_mib > 0
    assert Profile.from_dict(prof.to_dict()) == prof


def test_same_bundle_profiles_on_both_backends(mnist_bundle: Path) -> None:
    plan = Plan(warmup_runs=5, runs=50, inputs="synthetic")
    ort, ov = (profile_bundle(mnist_bundle, plan=plan, backend=b)
               for b in ("onnxruntime", "openvino"))
    assert (ort.backend, ov.backend) == ("onnxruntime", "openvino")
    assert ort.bundle == ov.bundle and ort.host == ov.host
    assert ort.ops["kernels"]["float"] == 4  # 2 Conv + 2 Gemm, FP32 bundle
    assert ov.ops["kernels"]["float"] >= 4 and ov.ops["kernels"]["quantized"] == 0
    assert ort.settings["distinct_inputs"] == 32


def test_one_stream_alone_is_the_timed_runs_rate(mnist_bundle: Path) -> None:
    """Alone, one stream's throughput is not measured twice: it is the timed runs' rate."""
    prof = profile_bundle(mnist_bundle, plan=Plan(warmup_runs=2, runs=40, batch=4,
                                                  inputs="synthetic", op_profile=False))
    rate = 4 * 1e3 / prof.latency_ms["mean"]
    assert prof.streams_per_s == {"1": pytest.approx(rate)}
    assert prof.throughput_per_s == pytest.approx(rate)
