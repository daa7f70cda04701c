"""CandidateResult: the typed record deploy carries from a candidate's build to deploy.json,
written with the keys schema 1 always had and read back the same."""

from __future__ import annotations

import json

from frugalml.deploy import outcome
from frugalml.deploy.candidates import CANDIDATES
from frugalml.deploy.result import CandidateResult, Scores, Search, Speed
from frugalml.runtime.speed import from_rounds


def _accuracy(cosine: float) -> dict:
    passed = cosine >= 0.99
    return {"task": "embedding", "items": 200, "within_budget": passed,
            "reference": {"probe_accuracy": 0.80},
            "candidate": {"probe_accuracy": 0.79, "mean_cosine_to_fp32": cosine},
            "checks": [{"name": "mean cosine to FP32", "value": cosine, "limit": 0.99,
                        "passed": passed}]}


class _Record:
    precision, size_bytes, path = "int8", 25_000_000, "/q/int8/model.onnx"

    def __init__(self, cosine: float) -> None:
        self.accuracy = _accuracy(cosine)


def test_a_searched_and_timed_candidate_writes_schema_1_and_reads_back() -> None:
    spec = CANDIDATES["int8-static"]
    before = outcome.scored(spec, _Record(0.97), cached=False)
    assert not before.accuracy.budget_met and before.accuracy.failures == [
        "mean cosine to FP32 0.9700 (limit 0.99)"]
    result = outcome.scored(spec, _Record(0.995), cached=True)
    result.search = Search(before=before.accuracy, float_nodes=["/a/MatMul", "/b/MatMul"],
                           curve={"points": [{"float_nodes": 2, "within_budget": True}]})
    result.bundle, result.verified = "/bundles/int8", "verified: natively"
    assert result.in_budget and result.reference == _accuracy(0.995)
    result.speed = Speed.of(from_rounds([10.0, 10.1, 10.0, 10.2, 10.1, 10.0],
                                        [5.0, 5.1, 5.0, 5.05, 5.0, 5.1]))
    entry = result.to_dict()
    assert {"name", "recipe", "backend", "format", "status", "precision", "size_bytes",
            "cached", "model", "accuracy", "speed", "verified", "bundle", "repaired",
            "before_repair", "float_nodes", "search"} == set(entry)
    assert entry["accuracy"]["delta"] == 0.79 - 0.80 and entry["accuracy"]["metric"] == (
        "probe_accuracy")
    assert entry["speed"]["verdict"] == "faster" and entry["speed"]["ci95"][0] > 1.9
    assert entry["before_repair"]["budget_met"] is False and entry["float_nodes"] == [
        "/a/MatMul", "/b/MatMul"]
    assert "reference" not in entry  # FP32's record is the engine's, not deploy.json's
    again = CandidateResult.from_dict(json.loads(json.dumps(entry)))
    assert json.loads(json.dumps(again.to_dict())) == json.loads(json.dumps(entry))
    assert again.search is not None and again.search.before.value == 0.79
    assert result.why_not() == f"int8-static {result.speed.describe()}"


def test_failures_skips_and_the_baseline_say_what_they_are() -> None:
    failed = outcome.not_scored(CANDIDATES["w4a8"], "failed", "QuantizationError: boom")
    assert not failed.in_budget and failed.why_not() == "w4a8 failed: QuantizationError: boom"
    assert failed.to_dict()["speed"] == {"ratio_p50": None, "ci95": None,
                                         "verdict": "not measured"}
    fp32 = outcome.fp32_entry("/e/model.onnx", 90_000_000, _accuracy(0.995))
    assert fp32.to_dict()["speed"] == {"ratio_p50": 1.0, "ci95": [1.0, 1.0],
                                       "verdict": "baseline"}
    assert fp32.accuracy == Scores(metric="probe_accuracy", fp32=0.8, value=0.8,
                                   budget_met=True, failures=[], task="embedding", items=200)
    untimed = Speed.not_measured("not timed: the time budget ran out")
    assert untimed.describe() == "not measured" and untimed.to_dict()["why"].startswith(
        "not timed")
