"""Caching: a second deploy reuses export, quantization and evaluation instead of redoing them."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from frugalml.errors import TargetError
from frugalml.pipeline import DeployResult
from tests.conftest import SMALL


def test_second_run_reuses_cached_stages(deployed: DeployResult, tmp_path: Path) -> None:
    from frugalml.calibration import rotten_tomatoes_file
    from frugalml.demo import default_model_dir
    from frugalml.pipeline import deploy

    # A copy of the first run's cache: proves cache dirs are relocatable and keeps the first
    # run's report untouched for the other tests.
    out = tmp_path / "again"
    cache = out / "cache"
    shutil.copytree(deployed.report_json.parent / "cache", cache)
    before = {p.name: p.stat().st_mtime_ns for p in cache.iterdir()}
    again = deploy(default_model_dir(), rotten_tomatoes_file(), out,
                   dataclasses.replace(SMALL, profile_runs=10), quiet=True)
    after = {p.name: p.stat().st_mtime_ns for p in cache.iterdir()}
    assert before == after  # nothing rebuilt, nothing added
    assert again.report["int8"]["mean_cosine"] == deployed.report["int8"]["mean_cosine"]
    assert again.bundles["int8"].is_dir()


def test_deploy_to_several_targets_quantizes_per_format_and_verifies_each(
        deployed: DeployResult, tmp_path: Path) -> None:
    """x86-avx2 natively (speed-gated), x86-avx512 (U8S8, 8-bit weights) natively on a VNNI host
    and not verified on an AVX2 one, android-arm64 (S8S8) failing its check without stopping
    the others; one quantized model per (format, scoring).

    The phone's S8S8 MiniLM .ort does not reproduce the unfused reference on the desktop
    (worst-token cosine 0.979, as under emulated ARM: 0.98): transformer INT8 token outputs
    differ across CPU classes by more than the bundle's 0.999 tolerance, so it is refused."""
    from frugalml.calibration import rotten_tomatoes_file
    from frugalml.demo import default_model_dir
    from frugalml.deploy_targets import SUMMARY_NAME, deploy_targets
    from frugalml.runtime.host import read_host

    shutil.copytree(deployed.report_json.parent / "cache", tmp_path / "cache")  # the export
    outcomes = deploy_targets(default_model_dir(), rotten_tomatoes_file(), tmp_path,
                              ["x86-avx2", "android-arm64", "x86-avx512"], eval_items=200,
                              quiet=True)
    assert list(outcomes) == ["x86-avx2", "android-arm64", "x86-avx512"]
    vnni_here = "avx512_vnni" in read_host().flags
    assert sorted(p.name for p in (tmp_path / "quantized").iterdir()) == [
        "s8s8-unfused", "u8s8-native" if vnni_here else "u8s8-unfused",
        "u8s8-reduce-range-native"]
    avx2, phone, vnni = outcomes.values()
    assert avx2.accuracy["scored_with"] == "this host's kernels"
    assert avx2.accuracy["within_budget"], avx2.accuracy["checks"]
    assert all(v["status"] == "verified" and v["how"] == "natively"
               for v in avx2.verification.values())
    assert avx2.speed_gate is not None and avx2.note == avx2.speed_gate["why"]
    assert avx2.default == ("int8" if avx2.speed_gate["faster"] else "fp32")
    assert vnni.accuracy["scored_with"] == "this host's kernels" if vnni_here else \
        vnni.accuracy["scored_with"].startswith("unfused reference")
    assert phone.default == "" and phone.bundles == {}
    assert phone.note.startswith("failed: BundleError") and "reproduces its samples" in phone.note
    assert not (tmp_path / "targets" / "android-arm64" / "model-android-arm64-int8").exists()
    if vnni_here:
        assert vnni.speed_gate is not None and vnni.default == (
            "int8" if vnni.speed_gate["faster"] else "fp32")
    else:
        assert vnni.verification["int8"]["status"] == "not verified here"
        assert vnni.speed_gate is None and "not timed here" in vnni.note
    saved = json.loads((tmp_path / SUMMARY_NAME).read_text())
    assert saved["x86-avx2"]["default"] == avx2.default


def test_deploy_to_an_unknown_target_fails_before_any_work(tmp_path: Path) -> None:
    from frugalml.deploy_targets import deploy_targets

    with pytest.raises(TargetError, match="Unknown target 'x86-sse'.*x86-avx2"):
        deploy_targets(tmp_path, tmp_path / "none.csv", tmp_path / "out", ["x86-avx2", "x86-sse"])
    with pytest.raises(TargetError, match="No target given"):
        deploy_targets(tmp_path, tmp_path / "none.csv", tmp_path / "out", [])
    assert not (tmp_path / "out").exists()


def test_require_quantized_names_the_failed_check_and_the_report(tmp_path: Path) -> None:
    from frugalml.errors import QuantizationError
    from frugalml.pipeline import _refuse_fp32

    report = {"checks": [
        {"name": "mean cosine to FP32", "value": 0.995, "limit": 0.99, "passed": True, "why": ""},
        {"name": "p50 speed-up vs FP32", "value": 0.51, "limit": 1.03, "passed": False,
         "why": "slower beyond ±3%"}]}
    with pytest.raises(QuantizationError) as e:
        _refuse_fp32(report, tmp_path / "report.md")
    text = str(e.value)
    assert "p50 speed-up vs FP32 0.5100 (limit 1.03): slower beyond ±3%" in text
    assert "mean cosine" not in text and str(tmp_path / "report.md") in text
