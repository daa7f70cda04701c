"""A candidate's entry in deploy.json, from its quantize record, bundle and speed verdict.

The headline metric is the one users judge the task by (top-1, probe accuracy, perplexity,
detection agreement, output cosine); the full accuracy record stays in the bundle's manifest
and in ``quantize.json``.
"""

from __future__ import annotations

from typing import Any

from frugalml.deploy.candidates import FP32, CandidateSpec
from frugalml.deploy.select import NOT_MEASURED

# Per task: the headline metric, in order of preference (the first the record has).
HEADLINE = {
    "classification": ("top1_accuracy", "top1_agreement_with_fp32"),
    "embedding": ("probe_accuracy", "mean_cosine_to_fp32"),
    "language-model": ("perplexity",),
    "object-detection": ("map50", "detection_agreement_with_fp32"),
    "outputs": ("worst_part_cosine_to_fp32", "mean_cosine_to_fp32"),
    "streaming": ("frame_agreement_with_fp32", "mean_cosine_to_fp32"),
}
# Metrics that are 1 for FP32 by definition (it agrees with itself).
_SELF_AGREEMENT = ("top1_agreement_with_fp32", "mean_cosine_to_fp32",
                   "detection_agreement_with_fp32", "worst_part_cosine_to_fp32",
                   "frame_agreement_with_fp32")
# A streaming detector's scores deploy.json shows beside the headline.
_STREAM_SCORES = ("segment_agreement_with_fp32", "state_end_cosine")


def headline(accuracy: dict[str, Any]) -> tuple[str, float | None, float]:
    """(metric name, FP32's value, the candidate's value) of a quantize accuracy record."""
    names = HEADLINE.get(accuracy["task"], ("mean_cosine_to_fp32",))
    name = next((n for n in names if n in accuracy["candidate"]), names[-1])
    fp32 = accuracy["reference"].get(name, 1.0 if name in _SELF_AGREEMENT else None)
    return name, fp32, float(accuracy["candidate"].get(name, float("nan")))


def scored(spec: CandidateSpec, record: Any, cached: bool) -> dict[str, Any]:
    """A candidate that quantized and was scored against FP32 (in budget or not)."""
    accuracy = record.accuracy
    metric, fp32, value = headline(accuracy)
    return {**spec.to_dict(), "status": "scored", "precision": record.precision,
            "size_bytes": record.size_bytes, "cached": cached, "model": str(record.path),
            "accuracy": {"metric": metric, "fp32": fp32, "value": value,
                         "delta": None if fp32 is None else value - fp32,
                         "budget_met": bool(accuracy["within_budget"]),
                         "failures": [f"{c['name']} {c['value']:.4f} (limit {c['limit']})"
                                      for c in accuracy["checks"] if not c["passed"]],
                         "checks": accuracy["checks"], "task": accuracy["task"],
                         "items": accuracy["items"],
                         **({"stopped_after_items": accuracy["stopped_after_items"]}
                            if accuracy.get("stopped_after_items") else {}),
                         **_rise_interval(accuracy),
                         **{k: accuracy["candidate"][k] for k in _STREAM_SCORES
                            if k in accuracy["candidate"]}},
            "speed": {"ratio_p50": None, "ci95": None, "verdict": NOT_MEASURED},
            "verified": None, "bundle": None}


def _rise_interval(accuracy: dict[str, Any]) -> dict[str, Any]:
    """A decoder's perplexity rise with its 95 % interval over the windows, when scored so."""
    interval = (accuracy.get("candidate") or {}).get("perplexity_increase_pct_ci95")
    return {"increase_pct_ci95": interval} if interval else {}


def fp32_entry(model: Any, size_bytes: int, reference: dict[str, Any] | None) -> dict[str, Any]:
    """The FP32 baseline; its accuracy is the reference side of a scored candidate."""
    accuracy = None
    if reference is not None:
        metric, fp32, _ = headline(reference)
        accuracy = {"metric": metric, "fp32": fp32, "value": fp32, "delta": 0.0,
                    "budget_met": True, "failures": [], "task": reference["task"],
                    "items": reference["items"]}
        if "unigram_perplexity" in reference["reference"]:  # what "plausible" was judged by
            accuracy["unigram_perplexity"] = reference["reference"]["unigram_perplexity"]
    return {"name": FP32, "recipe": "fp32", "backend": "onnxruntime", "format": "onnx",
            "status": "scored", "precision": "fp32", "size_bytes": size_bytes,
            "model": str(model), "accuracy": accuracy,
            "speed": {"ratio_p50": 1.0, "ci95": [1.0, 1.0], "verdict": "baseline"},
            "verified": None, "bundle": None}


def not_scored(spec: CandidateSpec, status: str, error: str) -> dict[str, Any]:
    """A candidate that failed (its typed error) or was skipped (the time budget ran out)."""
    return {**spec.to_dict(), "status": status, "error": error, "precision": None,
            "size_bytes": None, "accuracy": None,
            "speed": {"ratio_p50": None, "ci95": None, "verdict": NOT_MEASURED},
            "verified": None, "bundle": None}


def verification_text(check: dict[str, Any]) -> str:
    """How a bundle was verified here, in a few words."""
    if check.get("status") == "verified":
        ran = check.get("kernels_ran") or {}
        kernels = ", ".join(f"{n} {p}" for p, n in ran.get("precisions", {}).items())
        if kernels and ran.get("amx_nodes"):
            kernels += f", {ran['amx_nodes']} of them on AMX"
        return f"verified: {check.get('how', 'natively')}" + (
            f" (kernels ran: {kernels})" if kernels else "")
    return f"{check.get('status', 'not verified')}: {check.get('why', '')}".rstrip(": ")


def summary(entry: dict[str, Any]) -> str:
    """``probe_accuracy 0.7731 (FP32 0.7750), 22.9 MB, within budget`` for progress lines."""
    acc = entry["accuracy"]
    fp32 = "" if acc["fp32"] is None else f" (FP32 {acc['fp32']:.4f})"
    verdict = ("within budget" if acc["budget_met"] else
               "over budget: " + "; ".join(acc["failures"]))
    size = entry["size_bytes"] / 1e6
    rise = acc.get("increase_pct_ci95")
    if rise:
        fp32 += f", rise 95 % CI {rise[0]:+.2f} % .. {rise[1]:+.2f} %"
    cut = (f", scored on the first {acc['stopped_after_items']} evaluation items (the time "
           "budget ran out)" if acc.get("stopped_after_items") else "")
    return f"{acc['metric']} {acc['value']:.4f}{fp32}, {size:.1f} MB, {verdict}{cut}"
