"""Export validation collects every failing output before raising once."""

from __future__ import annotations

import numpy as np
import pytest

from frugalml.errors import ExportError
from frugalml.export import compare_outputs


def test_all_failures_are_listed() -> None:
    ref = {"a": np.ones((2, 3), np.float32), "b": np.ones((2, 3), np.float32),
           "c": np.ones((2, 3), np.float32)}
    got = {"a": ref["a"] + 0.5, "b": np.ones((2, 4), np.float32)}
    with pytest.raises(ExportError) as err:
        compare_outputs(ref, got, atol=1e-3, min_cosine=0.99)
    text = str(err.value)
    assert "a: max abs error 0.5" in text
    assert "b: shape (2, 4), source gives (2, 3)" in text
    assert "c: missing" in text


def test_close_outputs_pass_with_numbers() -> None:
    ref = {"a": np.arange(6, dtype=np.float32).reshape(2, 3)}
    checks = compare_outputs(ref, {"a": ref["a"] + 1e-6}, atol=1e-5, min_cosine=0.9999)
    assert checks[0].passed and checks[0].max_abs_error == pytest.approx(1e-6, rel=0.2)
