"""Profiler statistics and the Profile record."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from frugalml.runtime.profile import Profile, profile_bundle, summarize


def test_summarize_percentiles() -> None:
    times = [int(ms * 1e6) for ms in range(1, 101)]  # 1..100 ms
    s = summarize(times)
    assert s["p50"] == np.percentile(np.arange(1, 101), 50)
    assert s["p99"] == np.percentile(np.arange(1, 101), 99)
    assert abs(s["mean"] - 50.5) < 1e-9 and s["min"] == 1.0
    assert s["mean_ci95_low"] < 50.5 < s["mean_ci95_high"]


def test_profile_record_roundtrip(int8_bundle: Path) -> None:
    prof = profile_bundle(int8_bundle, runs=5, warmup=1, threads=1)
    assert prof.latency_ms["p50"] > 0 and prof.throughput_per_s > 0
    assert prof.cold_start_ms["load"] > 0 and prof.peak_rss_mib > 10
    assert prof.host["flags"] and prof.settings["input_shapes"]["input_ids"][0] == 1
    assert Profile.from_dict(prof.to_dict()) == prof
