"""`frugal compare` never calls a difference between microarchitectures a regression unless
asked to compare across hosts, and then labels it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from frugalml.errors import FrugalError
from frugalml.report.compare import compare_runs
from frugalml.report.runs import Run


def _profile(p50: float, family: int, model: int, arch: str) -> dict:
    host = {"cpu_model": "AMD EPYC", "vendor": "AuthenticAMD", "family": family,
            "model": model, "microarchitecture": arch, "flags": ["avx2"]}
    return {"bundle": "m-int8", "backend": "onnxruntime", "host": host,
            "latency_ms": {"p50": p50, "p50_ci95": [p50 * 0.99, p50 * 1.01], "p99": p50 * 1.2}}


def test_runs_from_two_microarchitectures_are_refused_then_labelled() -> None:
    zen2, zen3 = _profile(10.0, 23, 49, "Zen 2"), _profile(14.0, 25, 1, "Zen 3")
    with pytest.raises(FrugalError, match=r"Zen 2.*-> .*Zen 3.*--cross-host"):
        compare_runs([Run(zen2), Run(zen3)])
    (labelled,) = compare_runs([Run(zen2), Run(zen3)], cross_host=True)
    assert labelled.regression and labelled.p50_ratio == pytest.approx(1.4)
    assert labelled.cross_host is not None and "Zen 2" in labelled.cross_host


def test_same_microarchitecture_compares_as_before() -> None:
    (same,) = compare_runs([Run(_profile(10.0, 25, 1, "Zen 3")), Run(_profile(10.1, 25, 1,
                                                                             "Zen 3"))])
    assert same.cross_host is None and not same.regression


def test_cli_refuses_without_cross_host_and_labels_with_it(tmp_path: Path) -> None:
    base, new = tmp_path / "base.json", tmp_path / "new.json"
    extra = {"schema_version": 2, "cold_start_ms": {}}
    base.write_text(json.dumps(_profile(10.0, 23, 49, "Zen 2") | extra))
    new.write_text(json.dumps(_profile(14.0, 25, 1, "Zen 3") | extra))
    cmd = [sys.executable, "-m", "frugalml.cli", "compare", str(base), str(new)]
    refused = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert refused.returncode == 2 and "--cross-host" in refused.stderr
    done = subprocess.run([*cmd, "--cross-host"], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and "CROSS-HOST: AMD EPYC (Zen 2" in done.stdout, done.stderr
