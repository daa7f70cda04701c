"""Which candidate ships on a target, and why, from the measured numbers alone.

On a target this host runs natively the speed protocol has timed every in-budget candidate
against FP32: the fastest one with a `faster` verdict ships, else FP32. Elsewhere nothing can
be timed: the smallest in-budget candidate ships, and the reason says its speed was not
measured here. Candidates are the plain dicts deploy.json holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from frugalml.deploy.candidates import FP32
from frugalml.runtime.speed import describe

NOT_MEASURED = "not measured"


def in_budget(candidate: dict[str, Any]) -> bool:
    """Scored, within every accuracy and size limit, and its bundle built and kept."""
    return (candidate["status"] == "scored" and candidate["accuracy"]["budget_met"]
            and candidate.get("bundle") is not None)


def _why_not(c: dict[str, Any]) -> str:
    """One clause per candidate that did not ship."""
    if c["status"] == "failed":
        return f"{c['name']} failed: {c['error']}"
    if c["status"] == "skipped":
        return f"{c['name']} skipped: {c['error']}"
    if not c["accuracy"]["budget_met"]:
        repair = (f" even after the mixed-precision search kept {len(c['float_nodes'])} nodes "
                  "in float" if c.get("repaired") else "")
        return f"{c['name']} missed its budget{repair} ({'; '.join(c['accuracy']['failures'])})"
    if c.get("bundle") is None:
        return f"{c['name']} did not build a bundle: {c.get('verified')}"
    return f"{c['name']} {describe(c['speed'])}"


def select_native(candidates: Sequence[dict[str, Any]]) -> tuple[str, str]:
    """(shipped name, why) where every in-budget candidate was timed against FP32."""
    tried = [c for c in candidates if c["name"] != FP32]
    faster = [c for c in tried if in_budget(c) and c["speed"]["verdict"] == "faster"]
    if faster:
        best = max(faster, key=lambda c: c["speed"]["ratio_p50"])
        others = [c for c in tried if c is not best]
        rest = f"; the others: {'; '.join(_why_not(c) for c in others)}" if others else ""
        return best["name"], (f"{best['name']} is within its budget and the fastest candidate "
                              f"measured faster than FP32: {describe(best['speed'])}{rest}")
    if not tried:
        return FP32, "FP32: no quantized candidate applies to this model and target"
    return FP32, ("FP32: no candidate was both within its budget and measured faster: "
                  + "; ".join(_why_not(c) for c in tried))


def select_elsewhere(candidates: Sequence[dict[str, Any]], verified_how: str) -> tuple[str, str]:
    """(shipped name, why) on a target this host cannot time: the smallest in-budget one."""
    tried = [c for c in candidates if c["name"] != FP32]
    # An FP32 variant (fused) is no smaller; without a measurement it has no claim over FP32.
    kept = [c for c in tried if in_budget(c) and c["precision"] != "fp32"]
    if not kept:
        reasons = "; ".join(_why_not(c) for c in tried) or "no quantized candidate applies"
        return FP32, f"FP32: {reasons}"
    best = min(kept, key=lambda c: c["size_bytes"])
    return best["name"], (f"{best['name']} is the smallest candidate within its budget "
                          f"({best['size_bytes'] / 1e6:.1f} MB); its speed was not measured "
                          f"here: this host cannot run the target natively ({verified_how})")
