"""`frugal bench BUNDLE --against BASELINE`: the speed protocol on two real bundles."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from frugalml.errors import InputError
from frugalml.runtime.speed import Plan, measure_bundles


def test_a_bundle_against_itself_measures_a_ratio_near_one(mnist_bundle: Path) -> None:
    """The verdict follows its own interval; which verdict it is depends on the machine's noise
    (two sessions of one bundle measured 3-4 % apart on a busy host), so it is not asserted."""
    from frugalml.runtime.speed import INCONCLUSIVE, THRESHOLD, classify

    done = subprocess.run([sys.executable, "-m", "frugalml.cli", "bench", str(mnist_bundle),
                           "--against", str(mnist_bundle), "--threads", "1", "--time-cap", "8",
                           "--json"], capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    verdict = json.loads(done.stdout)
    assert verdict["verdict"] in (classify(tuple(verdict["ci95"]), THRESHOLD), INCONCLUSIVE)
    assert verdict["faster"] == (verdict["verdict"] == "faster")
    assert verdict["ci95"][0] <= verdict["ratio_p50"] <= verdict["ci95"][1]
    assert 0.9 < verdict["ratio_p50"] < 1.1 and verdict["rounds"] >= 6
    assert verdict["settings"]["spinning"] is False and verdict["host"]["microarchitecture"]


def test_bundles_of_different_models_are_refused(mnist_bundle: Path, int8_bundle: Path) -> None:
    with pytest.raises(InputError, match="only bundles of one model"):
        measure_bundles(mnist_bundle, int8_bundle, plan=Plan(time_cap_s=2))
