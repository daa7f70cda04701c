"""The demo's deploy (all-MiniLM-L6-v2, Rotten Tomatoes) through the engine: the candidates
tried, their scores on a 1,000-text evaluation slice, the choice against the measured
numbers, the shipped bundle's accuracy recomputed from the bundle, and the reports."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from frugalml.deploy import DeployResult
from frugalml.deploy.result import CandidateResult
from frugalml.deploy.select import select_native
from tests.conftest import candidate
from tests.helpers import open_in_chromium


def _target(deployed: DeployResult) -> dict:
    (target,) = deployed.record["targets"].values()
    return target


def test_default_candidates_for_a_transformer_are_tried_and_scored(deployed: DeployResult
                                                                   ) -> None:
    from frugalml.deploy.candidates import TRANSFORMER, candidates_for
    from frugalml.targets import get_target

    target = _target(deployed)
    # ONNX Runtime's four everywhere; where the target's CPUs have AMX / native bf16, also
    # OpenVINO's INT8 and bf16 (derived from the target's capabilities, not hand-listed)
    expected = [c.name for c in candidates_for(TRANSFORMER, get_target(target["target"]["name"]),
                                               ("default",))]
    assert expected[:4] == ["fp32-fused", "int8-static", "int8-dynamic", "int8-dynamic-fused"]
    assert [c["name"] for c in target["candidates"]] == ["fp32", *expected]
    assert deployed.record["task"] == "embedding" and deployed.record["family"] == "transformer"
    fp32 = candidate(deployed, "fp32")
    assert fp32["accuracy"]["value"] > 0.6  # the probe learns something real (3 classes)
    fused = candidate(deployed, "fp32-fused")
    assert fused["status"] == "scored" and fused["size_bytes"] >= 0.99 * fp32["size_bytes"]
    fused_checks = {k["name"]: k for k in fused["accuracy"]["checks"]}
    assert fused_checks["mean cosine to FP32"]["value"] >= 0.9999  # the same function
    for name in ("int8-static", "int8-dynamic", "int8-dynamic-fused"):
        c = candidate(deployed, name)
        acc = c["accuracy"]
        assert c["status"] == "scored" and acc["items"] == 1000
        checks = {k["name"]: k for k in acc["checks"]}
        assert checks["mean cosine to FP32"]["value"] >= 0.99, name
        assert checks["probe accuracy drop (points)"]["value"] <= 2.0, name  # SMALL's budget
        assert acc["fp32"] == fp32["accuracy"]["value"]  # scored against the same FP32
        assert acc["delta"] == pytest.approx(acc["value"] - acc["fp32"], abs=1e-12)
        assert c["size_bytes"] <= 0.30 * fp32["size_bytes"], name


def test_shipped_choice_follows_the_measured_numbers(deployed: DeployResult) -> None:
    target = _target(deployed)
    quantized = [c for c in target["candidates"] if c["name"] != "fp32"]
    shipped, why = select_native([CandidateResult.from_dict(c) for c in quantized])
    assert target["shipped"] == shipped and target["why"].startswith(why)
    assert "measured on" in target["why"] and deployed.record["host"]["cpu_model"] in target["why"]
    for c in quantized:
        if CandidateResult.from_dict(c).in_budget:  # every one of them was timed
            s = c["speed"]
            assert s["verdict"] in ("faster", "slower", "inconclusive")
            assert s["ci95"][0] <= s["ratio_p50"] <= s["ci95"][1] and s["rounds"] >= 6
    faster = [c for c in quantized if CandidateResult.from_dict(c).in_budget
              and c["speed"]["verdict"] == "faster"]
    if faster:
        best = max(faster, key=lambda c: c["speed"]["ratio_p50"])
        assert target["shipped"] == best["name"]
    else:
        assert target["shipped"] == "fp32" and "no candidate" in target["why"]
    assert Path(target["bundle"]) == deployed.shipped[next(iter(deployed.record["targets"]))]


def _embed(bundle: Path, batches: list) -> np.ndarray:
    from frugalml import runtime

    with runtime.load(bundle) as model:
        return np.concatenate([model.run(f)["sentence_embedding"] for f, _ in batches])


def test_shipped_bundle_accuracy_recomputed_from_the_bundles(deployed: DeployResult) -> None:
    from frugalml.calibration.descriptor import open_descriptor
    from frugalml.calibration.evaluate import score_embeddings

    target = _target(deployed)
    shipped = candidate(deployed, target["shipped"])
    data = open_descriptor(deployed.out_dir / "calibration")
    assert data.fingerprint == deployed.record["calibration"]["fingerprint"]
    batches = list(data.batches("evaluation", batch_size=32, limit=1000, by_length=True))
    labels = np.concatenate([lab for _, lab in batches])
    ref = _embed(Path(candidate(deployed, "fp32")["bundle"]), batches)
    got = _embed(Path(shipped["bundle"]), batches)
    score = score_embeddings(ref, got, labels)
    assert score.reference_accuracy == pytest.approx(shipped["accuracy"]["fp32"], abs=0.005)
    assert score.candidate_accuracy == pytest.approx(shipped["accuracy"]["value"], abs=0.005)
    manifest = json.loads((Path(shipped["bundle"]) / "manifest.json").read_text())
    assert manifest["calibration"]["fingerprint"] == data.fingerprint
    if target["shipped"] != "fp32":
        cosine = float(np.mean(np.sum(ref * got, axis=1) / np.linalg.norm(ref, axis=1)
                               / np.linalg.norm(got, axis=1)))
        recorded = {c["name"]: c for c in shipped["accuracy"]["checks"]}["mean cosine to FP32"]
        assert cosine == pytest.approx(recorded["value"], abs=2e-3)
        assert manifest["metrics"]["accuracy"]["within_budget"]


def test_export_matched_torch(deployed: DeployResult) -> None:
    checks = {c["name"]: c for c in deployed.record["export"]["checks"]}
    assert set(checks) == {"last_hidden_state", "sentence_embedding"}
    assert checks["sentence_embedding"]["min_cosine"] > 0.9999
    assert checks["last_hidden_state"]["max_abs_error"] < 1e-4


def test_deploy_json_has_the_documented_shape(deployed: DeployResult) -> None:
    record = json.loads(deployed.deploy_json.read_text())
    assert {"schema_version", "host", "model", "task", "metric", "targets", "report_html",
            "report_md"} <= set(record)
    assert record["host"]["family"] and record["host"]["microarchitecture"]
    for c in _target(deployed)["candidates"]:
        assert {"name", "recipe", "backend", "precision", "size_bytes", "accuracy", "speed",
                "verified", "bundle"} <= set(c)
        assert {"metric", "fp32", "value", "delta", "budget_met"} <= set(c["accuracy"])
        assert {"ratio_p50", "ci95", "verdict"} <= set(c["speed"])
        assert c["verified"].startswith("verified: natively")


def test_reports_open_with_the_decision(deployed: DeployResult, tmp_path: Path) -> None:
    target = _target(deployed)
    md = deployed.report_md.read_text()
    assert md.index("## Decision") < md.index("| candidate |")
    assert f"ships {target['shipped']}" in md and deployed.record["host"]["cpu_model"] in md
    console, dom = open_in_chromium(deployed.report_html, tmp_path / "report.png")
    assert any("frugal-deploy-report plots=" in ln for ln in console), console
    assert f"ships {target['shipped']}" in dom and "<table>" in dom
    assert dom.count('<tr class="shipped">') == 1 and dom.count("<svg") >= 3


def test_deploy_json_candidates_read_back_as_the_typed_results_that_wrote_them(
        deployed: DeployResult) -> None:
    """deploy.json holds CandidateResult.to_dict(); reading an entry back and writing it again
    gives the same JSON, for every status the demo's deploy produced."""
    on_disk = json.loads(deployed.deploy_json.read_text())
    (target,) = on_disk["targets"].values()
    for entry in target["candidates"]:
        typed = CandidateResult.from_dict(entry)
        assert json.loads(json.dumps(typed.to_dict())) == entry, entry["name"]
        assert typed.in_budget == (entry["status"] == "scored" and entry["bundle"] is not None
                                   and entry["accuracy"]["budget_met"])
