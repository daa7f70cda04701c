"""The deploy engine on the demo model: caching, several targets, early refusals."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from frugalml.deploy import DeployOptions, DeployResult
from frugalml.deploy.result import CandidateResult
from frugalml.errors import FrugalError, QuantizationError, TargetError
from tests.conftest import SMALL, candidate


def test_second_run_reuses_cached_stages(deployed: DeployResult, tmp_path: Path) -> None:
    from frugalml.demo import run_demo

    # A copy of the first run's cache: proves cache dirs are relocatable and keeps the first
    # run's outputs untouched for the other tests.
    out = tmp_path / "again"
    cache = out / "cache"
    shutil.copytree(deployed.out_dir / "cache", cache)
    before = {p.name: p.stat().st_mtime_ns for p in cache.iterdir()}
    again = run_demo(out, options=dataclasses.replace(SMALL, profile_runs=10), quiet=True)
    after = {p.name: p.stat().st_mtime_ns for p in cache.iterdir()}
    assert before == after  # nothing rebuilt, nothing added
    for name in ("int8-static", "int8-dynamic"):
        assert candidate(again, name)["cached"]
        assert candidate(again, name)["accuracy"] == candidate(deployed, name)["accuracy"]
    assert all(Path(b).is_dir() for b in again.shipped.values())


def test_several_targets_each_get_their_own_candidates_and_verification(
        deployed: DeployResult, tmp_path: Path) -> None:
    """x86-avx2 natively (timed), x86-avx512 natively on a VNNI host and not verified on an AVX2
    one, android-arm64 (S8S8) whose static and unfused dynamic INT8 bundles fail their desktop
    check without stopping the others; it ships the smallest candidate that passed.

    The phone's S8S8 MiniLM .ort does not reproduce the unfused reference on the desktop
    (worst-token cosine 0.979, as under emulated ARM: 0.98): transformer INT8 token outputs
    differ across CPU classes by more than the bundle's 0.999 tolerance, so it is refused.
    The QAttention graph (int8-dynamic-fused) reproduced its samples in the run that set this
    test (cosine >= 0.999), so which one ships is recomputed from the recorded outcomes."""
    from frugalml.demo import run_demo
    from frugalml.deploy.select import select_elsewhere
    from frugalml.runtime.host import read_host

    shutil.copytree(deployed.out_dir / "cache", tmp_path / "cache")  # the export
    result = run_demo(tmp_path, options=dataclasses.replace(
        # 100 texts: verification reads the bundle's own samples, not the evaluation set
        SMALL, targets=("x86-avx2", "android-arm64", "x86-avx512"), eval_items=100,
        # Under test: each target's verification of the INT8 kinds; fp32-fused (built, timed
        # and bundled for each target like the others) asserts nothing here and is left out.
        candidates="int8-static,int8-dynamic,int8-dynamic-fused",
        budget={"max_accuracy_drop_points": 10.0},  # under test: verification, not accuracy
        profile_runs=10), quiet=True)
    targets = result.record["targets"]
    assert list(targets) == ["x86-avx2", "android-arm64", "x86-avx512"]
    avx2, phone, vnni = targets.values()
    vnni_here = "avx512_vnni" in read_host().flags
    assert avx2["native"] and vnni["native"] == vnni_here and not phone["native"]
    for c in avx2["candidates"]:
        assert c["verified"] == "verified: natively", c
        if c["name"] != "fp32":
            assert c["speed"]["verdict"] in ("faster", "slower", "inconclusive")
    fp32_how = candidate_of(phone, "fp32")["verified"]
    assert "desktop ONNX Runtime" in fp32_how
    assert (phone["shipped"], phone["why"]) == select_elsewhere(
        [CandidateResult.from_dict(c) for c in phone["candidates"][1:]], fp32_how)
    assert phone["bundle"].endswith(f"android-arm64-{phone['shipped']}")
    static = candidate_of(phone, "int8-static")
    assert static["bundle"] is None and "BundleError" in static["verified"]
    assert "reproduces its samples" in static["verified"]
    for c in phone["candidates"]:  # a bundle that failed its check is not left behind
        if c["bundle"] is None:
            assert not (tmp_path / "bundles" / f"{result.record['model']}-android-arm64-"
                                               f"{c['name']}").exists(), c["name"]
    if not vnni_here:
        assert "not measured here" in vnni["why"] or vnni["shipped"] == "fp32"
        assert all(c["speed"]["verdict"] in ("not measured", "baseline")
                   for c in vnni["candidates"])


def candidate_of(target: dict, name: str) -> dict:
    return next(c for c in target["candidates"] if c["name"] == name)


def test_bad_options_fail_before_any_work(tmp_path: Path) -> None:
    from frugalml.deploy import deploy

    out = tmp_path / "out"
    with pytest.raises(TargetError, match="Unknown target 'x86-sse'.*x86-avx2"):
        deploy(tmp_path, tmp_path / "none.csv", out, DeployOptions(targets=("x86-sse",)))
    with pytest.raises(TargetError, match="No target given"):
        DeployOptions(targets=())
    with pytest.raises(QuantizationError, match="Unknown candidate int3.*int8-dynamic"):
        DeployOptions(candidates="int8-static,int3")
    with pytest.raises(QuantizationError, match="min_mean_cosine 1.5"):
        DeployOptions(budget={"min_mean_cosine": 1.5})
    with pytest.raises(FrugalError, match="Unknown budget fields"):
        DeployOptions(budget={"min_cosine": 0.9})
    with pytest.raises(FrugalError, match="time_budget_s"):
        DeployOptions(time_budget_s=0)
    assert not out.exists()


def test_require_quantized_refuses_an_fp32_outcome_naming_why(deployed: DeployResult,
                                                              tmp_path: Path) -> None:
    from frugalml.demo import run_demo

    shutil.copytree(deployed.out_dir / "cache", tmp_path / "cache")
    with pytest.raises(QuantizationError) as e:  # no candidate can be 5x smaller than FP32
        run_demo(tmp_path, options=dataclasses.replace(  # one candidate shows it (48 s -> 10)
            SMALL, budget={"max_size_ratio": 0.2}, require_quantized=True, eval_items=200,
            candidates="int8-static", profile_runs=10),
            quiet=True)
    text = str(e.value)
    assert "--require-quantized" in text and "size vs FP32" in text
    assert str(tmp_path / "report.md") in text and (tmp_path / "deploy.json").is_file()


def test_an_accuracy_miss_gets_the_mixed_precision_search_then_is_bundled_and_timed(
        deployed: DeployResult, tmp_path: Path) -> None:
    """int8-static's mean cosine on MiniLM is about 0.992, under a 0.995 limit: the engine
    ranks the quantized nodes by sensitivity and searches for the fewest kept in float that
    meet the budget (k passes, k - 1 fails, both tried), records the curve in deploy.json,
    and treats the chosen point as any candidate. The size limit is 0.5 here: nodes in float
    cost size (0.35 of FP32 measured)."""
    from frugalml.demo import run_demo
    from frugalml.deploy.select import select_native

    shutil.copytree(deployed.out_dir / "cache", tmp_path / "cache")  # the export
    result = run_demo(tmp_path, options=dataclasses.replace(
        SMALL, candidates="int8-static", eval_items=100, profile_runs=10,
        budget={"min_mean_cosine": 0.995, "max_accuracy_drop_points": 2.0,
                "max_size_ratio": 0.5}), quiet=True)
    (target,) = result.record["targets"].values()
    static = candidate(result, "int8-static")
    before = {c["name"]: c for c in static["before_repair"]["checks"]}
    assert not static["before_repair"]["budget_met"]
    cosine = before["mean cosine to FP32"]
    assert not cosine["passed"], cosine
    assert static["repaired"] and static["accuracy"]["budget_met"], static["accuracy"]
    points = {p["float_nodes"]: p for p in static["search"]["points"]}
    k = len(static["float_nodes"])
    assert k >= 1 and points[k]["within_budget"] and not points[k - 1]["within_budget"]
    assert points[k]["checks"]["mean cosine to FP32"] >= 0.995
    assert static["search"]["stopped_early"] == "" and static["search"]["ranked_nodes"] >= k
    # MiniLM's 12 residual Adds, whose pairs ONNX Runtime shares with the next MatMul, are
    # not ranked: excluding one changes nothing (a point once took 7 such Adds into float).
    assert static["search"]["kept_in_int8"] == 12
    report = Path(result.record["report_md"]).read_text()
    assert "mixed-precision search" in report
    assert "12 not: the backend keeps them int8 when told to exclude them" in report
    after = {c["name"]: c for c in static["accuracy"]["checks"]}
    assert after["mean cosine to FP32"]["value"] >= 0.995 > cosine["value"]
    assert static["float_nodes"] and (Path(static["bundle"]) / "manifest.json").is_file()
    manifest = json.loads((Path(static["bundle"]) / "manifest.json").read_text())
    assert set(static["float_nodes"]) <= set(manifest["recipe"]["ignored_nodes"])
    assert static["speed"]["verdict"] in ("faster", "slower", "inconclusive")
    assert (target["shipped"], target["why"].split("; measured on")[0]) == select_native(
        [CandidateResult.from_dict(c) for c in target["candidates"][1:]])
