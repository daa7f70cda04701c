"""A candidate's result (:class:`~frugalml.deploy.result.CandidateResult`) from its quantize
record: the scores by the task's headline metric, the FP32 baseline, a failure.

The headline metric is the one users judge the task by (top-1, probe accuracy, perplexity,
detection agreement, output cosine); the full accuracy record stays in the bundle's manifest
and in ``quantize.json``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from frugalml.deploy.candidates import FP32, CandidateSpec
from frugalml.deploy.result import BASELINE_SPEED, CandidateResult, Scores

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


def _identity(spec: CandidateSpec) -> dict[str, Any]:
    """The candidate's name and construction, as its result carries them."""
    return {"name": spec.name, "recipe": spec.recipe, "backend": spec.backend,
            "format": spec.output_format, "options": dict(spec.options) or None}


def scores(accuracy: dict[str, Any]) -> Scores:
    """The headline scores of a quantize accuracy record (in budget or not)."""
    metric, fp32, value = headline(accuracy)
    extra = {**({"stopped_after_items": accuracy["stopped_after_items"]}
                if accuracy.get("stopped_after_items") else {}),
             **_rise_interval(accuracy),
             **{k: accuracy["candidate"][k] for k in _STREAM_SCORES
                if k in accuracy["candidate"]}}
    return Scores(metric=metric, fp32=fp32, value=value,
                  budget_met=bool(accuracy["within_budget"]),
                  failures=[f"{c['name']} {c['value']:.4f} (limit {c['limit']})"
                            for c in accuracy["checks"] if not c["passed"]],
                  checks=accuracy["checks"], task=accuracy["task"], items=accuracy["items"],
                  extra=extra)


def scored(spec: CandidateSpec, record: Any, cached: bool) -> CandidateResult:
    """A candidate that quantized and was scored against FP32 (in budget or not)."""
    return CandidateResult(**_identity(spec), precision=record.precision,
                           size_bytes=record.size_bytes, cached=cached, model=str(record.path),
                           accuracy=scores(record.accuracy), reference=record.accuracy)


def _rise_interval(accuracy: dict[str, Any]) -> dict[str, Any]:
    """A decoder's perplexity rise with its 95 % interval over the windows, when scored so."""
    interval = (accuracy.get("candidate") or {}).get("perplexity_increase_pct_ci95")
    return {"increase_pct_ci95": interval} if interval else {}


def fp32_entry(model: Any, size_bytes: int, reference: dict[str, Any] | None
               ) -> CandidateResult:
    """The FP32 baseline; its accuracy is the reference side of a scored candidate."""
    accuracy = None
    if reference is not None:
        metric, fp32, _ = headline(reference)
        extra = ({"unigram_perplexity": reference["reference"]["unigram_perplexity"]}
                 if "unigram_perplexity" in reference["reference"] else {})  # "plausible" by
        accuracy = Scores(metric=metric, fp32=fp32, value=fp32, budget_met=True, failures=[],
                          task=reference["task"], items=reference["items"], extra=extra)
    return CandidateResult(name=FP32, recipe="fp32", backend="onnxruntime", format="onnx",
                           precision="fp32", size_bytes=size_bytes, model=str(model),
                           accuracy=accuracy, speed=dataclasses.replace(BASELINE_SPEED))


def not_scored(spec: CandidateSpec, status: str, error: str) -> CandidateResult:
    """A candidate that failed (its typed error) or was skipped (the time budget ran out)."""
    return CandidateResult(**_identity(spec), status=status, error=error)


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
