"""Which candidate ships on a target, and why, from the measured numbers alone.

On a target this host runs natively the speed protocol has timed every in-budget candidate
against FP32: the fastest one with a `faster` verdict ships, else FP32. Elsewhere nothing can
be timed: the smallest in-budget candidate ships, and the reason says its speed was not
measured here.
"""

from __future__ import annotations

from collections.abc import Sequence

from frugalml.deploy.candidates import FP32
from frugalml.deploy.result import CandidateResult


def select_native(candidates: Sequence[CandidateResult]) -> tuple[str, str]:
    """(shipped name, why) where every in-budget candidate was timed against FP32."""
    tried = [c for c in candidates if c.name != FP32]
    faster = [c for c in tried if c.in_budget and c.speed.faster]
    if faster:
        best = max(faster, key=lambda c: c.speed.ratio_p50 or 0.0)
        others = [c for c in tried if c is not best]
        rest = f"; the others: {'; '.join(c.why_not() for c in others)}" if others else ""
        return best.name, (f"{best.name} is within its budget and the fastest candidate "
                           f"measured faster than FP32: {best.speed.describe()}{rest}")
    if not tried:
        return FP32, "FP32: no quantized candidate applies to this model and target"
    return FP32, ("FP32: no candidate was both within its budget and measured faster: "
                  + "; ".join(c.why_not() for c in tried))


def select_elsewhere(candidates: Sequence[CandidateResult], verified_how: str
                     ) -> tuple[str, str]:
    """(shipped name, why) on a target this host cannot time: the smallest in-budget one."""
    tried = [c for c in candidates if c.name != FP32]
    # An FP32 variant (fused) is no smaller; without a measurement it has no claim over FP32.
    kept = [c for c in tried if c.in_budget and c.precision != "fp32"]
    if not kept:
        reasons = "; ".join(c.why_not() for c in tried) or "no quantized candidate applies"
        return FP32, f"FP32: {reasons}"
    best = min(kept, key=lambda c: c.size_bytes or 0)
    return best.name, (f"{best.name} is the smallest candidate within its budget "
                       f"({(best.size_bytes or 0) / 1e6:.1f} MB); its speed was not measured "
                       f"here: this host cannot run the target natively ({verified_how})")
