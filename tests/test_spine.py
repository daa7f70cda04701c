"""The spine's acceptance numbers, measured on a 1,000-text evaluation slice."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from frugalml.pipeline import DeployResult


def test_int8_embeddings_stay_close_to_fp32(deployed: DeployResult) -> None:
    int8 = deployed.report["int8"]
    assert int8["items"] == 1000
    assert int8["mean_cosine"] >= 0.99
    assert int8["min_cosine"] >= 0.9


def test_probe_accuracy_drop_within_one_point(deployed: DeployResult) -> None:
    fp32, int8 = deployed.report["fp32"], deployed.report["int8"]
    assert fp32["probe_accuracy"] > 0.6  # the probe learns something real (chance is ~0.5)
    assert int8["accuracy_drop_points"] <= 1.0
    assert abs(int8["accuracy_drop_points"]
               - 100 * (fp32["probe_accuracy"] - int8["probe_accuracy"])) < 1e-9


def test_int8_file_is_at_most_30_percent_of_fp32(deployed: DeployResult) -> None:
    fp32, int8 = deployed.report["fp32"], deployed.report["int8"]
    assert int8["size_bytes"] <= 0.30 * fp32["size_bytes"]
    assert int8["kernels"]["int8"] >= 30  # the attention-block projections run int8 kernels


def test_ship_decision_follows_the_measurements(deployed: DeployResult) -> None:
    report = deployed.report
    speed = report["speed"]
    speedup = speed["ratio_p50"]
    assert report["speedup_p50"] == speedup and speed["ci95"][0] <= speedup <= speed["ci95"][1]
    assert speed["verdict"] in ("faster", "slower", "inconclusive")
    assert any(c["name"].startswith("p50 speed-up") and c["passed"] == (speed["verdict"]
               == "faster") for c in report["checks"])
    text = deployed.report_md.read_text()
    # one speed-up number, with its interval, wherever the report states one
    assert text.count("speed-up INT8 vs FP32") == 1
    assert f"**{speedup:.2f}x** (95 % CI {speed['ci95'][0]:.2f}-{speed['ci95'][1]:.2f}" in text
    all_pass = all(c["passed"] for c in report["checks"])
    assert report["shipped"] == ("int8" if all_pass else "fp32")
    for check in report["checks"]:
        if not check["passed"]:
            assert check["why"], f"failed check {check['name']} must say why"
    if speed["verdict"] != "faster":  # never claimed: the report says it and ships FP32
        assert report["shipped"] == "fp32"


def test_report_files_and_manifest_agree(deployed: DeployResult) -> None:
    on_disk = json.loads(deployed.report_json.read_text())
    assert on_disk["shipped_bundle"] == str(deployed.shipped_bundle)
    md = deployed.report_md.read_text()
    assert "| size (MB) |" in md and "latency p50" in md and on_disk["host"]["cpu_model"] in md
    manifest = json.loads((deployed.bundles["int8"] / "manifest.json").read_text())
    assert manifest["metrics"]["mean_cosine"] == on_disk["int8"]["mean_cosine"]
    assert manifest["calibration"]["fingerprint"] == on_disk["calibration"]["fingerprint"]
    assert manifest["calibration"]["calibration_items"] == 300


def test_export_matched_torch(deployed: DeployResult) -> None:
    checks = {c["name"]: c for c in deployed.report["export"]["checks"]}
    assert set(checks) == {"last_hidden_state", "sentence_embedding"}
    assert checks["sentence_embedding"]["min_cosine"] > 0.9999
    assert checks["last_hidden_state"]["max_abs_error"] < 1e-4


def test_deploy_json_holds_each_candidate_with_its_speed_verdict(deployed: DeployResult) -> None:
    record = json.loads((deployed.report_json.parent / "deploy.json").read_text())
    report = deployed.report
    (target,) = record["targets"].values()
    assert record["host"]["microarchitecture"] == report["host"]["microarchitecture"]
    assert target["shipped"] == report["shipped"] and target["why"]
    by_name = {c["name"]: c for c in target["candidates"]}
    assert set(by_name) == {"fp32", "int8"}
    speed = by_name["int8"]["speed"]
    assert speed == {k: report["speed"][k] for k in ("ratio_p50", "ci95", "verdict")}
    assert by_name["int8"]["accuracy"]["delta"] == pytest.approx(
        -report["int8"]["accuracy_drop_points"] / 100, abs=1e-9)
    assert Path(target["bundle"]) == deployed.shipped_bundle
