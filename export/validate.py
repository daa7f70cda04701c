"""Compare exported outputs with the source model's, collecting every failure before raising."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

from frugalml.errors import ExportError
from frugalml.export.records import OutputCheck
from frugalml.runtime.numerics import max_abs_error, row_cosine

Outputs = Mapping[str, np.ndarray]


@dataclasses.dataclass(frozen=True, slots=True)
class Tolerance:
    """How close an export must stay to its source.

    An output passes when ``max_abs <= atol + rtol * max|reference|`` and every item's cosine to
    the source is at least ``min_cosine``; ``rtol`` lets large-magnitude outputs (LM logits)
    carry the float rounding that grows with their scale.
    """

    atol: float = 1e-4
    rtol: float = 1e-5
    min_cosine: float = 0.9999


DEFAULT_TOLERANCE = Tolerance()


@dataclasses.dataclass
class _Worst:
    abs_error: float = 0.0
    rel_error: float = 0.0
    mean_cosines: list[float] = dataclasses.field(default_factory=list)
    min_cosine: float = 1.0
    limit: float = 0.0


def compare_outputs(
    reference: Outputs | Sequence[Outputs],
    exported: Outputs | Sequence[Outputs],
    tolerance: Tolerance = DEFAULT_TOLERANCE,
    feeds: Mapping[str, np.ndarray] | Sequence[Mapping[str, np.ndarray]] = (),
) -> tuple[OutputCheck, ...]:
    """Check every output's shape, abs/rel error and cosine over one or more input batches.

    With the input ``feeds`` given, positions their ``attention_mask`` marks as padding are left
    out of the error and cosine of per-token outputs: a decoder's output there is undefined (a
    left-padded query attends to nothing), so two correct implementations may differ.

    Raises:
        ExportError: one message listing every output that is missing, has another shape, or
            exceeds a tolerance in any batch.
    """
    refs = [reference] if isinstance(reference, Mapping) else list(reference)
    gots = [exported] if isinstance(exported, Mapping) else list(exported)
    inputs = [feeds] if isinstance(feeds, Mapping) else list(feeds) or [{}] * len(refs)
    worst: dict[str, _Worst] = {}
    failures: list[str] = []
    for batch, (ref_outputs, got_outputs, feed) in enumerate(
            zip(refs, gots, inputs, strict=True)):
        mask = feed.get("attention_mask")
        for name, ref in ref_outputs.items():
            problem = _shape_problem(name, ref, got_outputs.get(name), batch)
            if problem:
                failures.append(problem)
                continue
            got = got_outputs[name]
            if mask is not None and mask.ndim == 2 and ref.shape[:2] == mask.shape:
                ref, got = ref[mask != 0], got[mask != 0]
            _accumulate(worst.setdefault(name, _Worst()), ref, got, tolerance)
    checks = []
    for name, w in worst.items():
        ok = w.abs_error <= w.limit and w.min_cosine >= tolerance.min_cosine
        checks.append(OutputCheck(
            name=name, max_abs_error=w.abs_error, max_rel_error=w.rel_error,
            mean_cosine=float(np.mean(w.mean_cosines)), min_cosine=w.min_cosine, passed=ok))
        if not ok:
            failures.append(
                f"{name}: max abs error {w.abs_error:.3g} (tolerance {w.limit:.3g}), relative "
                f"{w.rel_error:.3g}, min cosine {w.min_cosine:.6f} (tolerance "
                f"{tolerance.min_cosine})")
    if failures:
        raise ExportError(
            "The exported model does not match the source model on real inputs:\n  - "
            + "\n  - ".join(dict.fromkeys(failures))
            + "\nThe export is not kept. If the model branches on tensor values, the traced graph "
            "froze one branch: rewrite the branch with torch.where or torch.cond. Otherwise try "
            "another opset (--opset) or report the architecture."
        )
    return tuple(checks)


def _shape_problem(name: str, ref: np.ndarray, got: np.ndarray | None, batch: int) -> str:
    if got is None:
        return f"{name}: missing from the exported model's outputs"
    if got.shape != ref.shape:
        return f"{name}: shape {got.shape}, source gives {ref.shape} (input batch {batch})"
    return ""


def _accumulate(w: _Worst, ref: np.ndarray, got: np.ndarray, tolerance: Tolerance) -> None:
    ref, got = np.atleast_1d(ref), np.atleast_1d(got)
    scale = float(np.abs(ref.astype(np.float64)).max(initial=0.0))
    err = max_abs_error(ref, got)
    cos = row_cosine(ref, got) if ref.size else np.ones(1)
    w.abs_error = max(w.abs_error, err)
    w.rel_error = max(w.rel_error, err / max(scale, 1e-12))
    w.mean_cosines.append(float(cos.mean()))
    w.min_cosine = min(w.min_cosine, float(cos.min()))
    w.limit = max(w.limit, tolerance.atol + tolerance.rtol * scale)
