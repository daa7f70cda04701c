"""Compare exported outputs with the source model's, collecting every failure before raising."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from frugalml.errors import ExportError
from frugalml.export.records import OutputCheck
from frugalml.runtime.numerics import max_abs_error, row_cosine


def compare_outputs(
    reference: Mapping[str, np.ndarray],
    exported: Mapping[str, np.ndarray],
    *,
    atol: float,
    min_cosine: float,
) -> tuple[OutputCheck, ...]:
    """Check every output's shape, max abs error and cosine; raise once listing all failures.

    Raises:
        ExportError: an output is missing, has another shape, or exceeds a tolerance.
    """
    checks, failures = [], []
    for name, ref in reference.items():
        if name not in exported:
            failures.append(f"{name}: missing from the exported model's outputs")
            continue
        got = exported[name]
        if got.shape != ref.shape:
            failures.append(f"{name}: shape {got.shape}, source gives {ref.shape}")
            continue
        err = max_abs_error(ref, got)
        cos = row_cosine(ref, got)
        ok = err <= atol and float(cos.min()) >= min_cosine
        checks.append(
            OutputCheck(
                name=name,
                max_abs_error=err,
                mean_cosine=float(cos.mean()),
                min_cosine=float(cos.min()),
                passed=ok,
            )
        )
        if not ok:
            failures.append(
                f"{name}: max abs error {err:.3g} (tolerance {atol:g}), min cosine "
                f"{cos.min():.6f} (tolerance {min_cosine})"
            )
    if failures:
        raise ExportError(
            "The exported model does not match the source model on real inputs:\n  - "
            + "\n  - ".join(failures)
            + "\nTry another exporter or opset, or report the model architecture."
        )
    return tuple(checks)
