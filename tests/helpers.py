"""One helper for numeric assertions, so failures name the stage and output."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from frugalml.runtime.numerics import max_abs_error, row_cosine


def assert_outputs_close(stage: str, ref: Mapping[str, np.ndarray],
                         got: Mapping[str, np.ndarray], *, atol: float,
                         min_cosine: float) -> None:
    """Check names, shapes, dtypes, max abs error and per-item cosine of every output."""
    assert set(ref) == set(got), f"{stage}: outputs {sorted(got)} != expected {sorted(ref)}"
    for name, r in ref.items():
        g = got[name]
        assert g.shape == r.shape, f"{stage}/{name}: shape {g.shape} != {r.shape}"
        assert g.dtype == r.dtype, f"{stage}/{name}: dtype {g.dtype} != {r.dtype}"
        err, cos = max_abs_error(r, g), float(row_cosine(r, g).min())
        assert err <= atol, f"{stage}/{name}: max abs error {err:.3g} > {atol}"
        assert cos >= min_cosine, f"{stage}/{name}: min cosine {cos:.6f} < {min_cosine}"
