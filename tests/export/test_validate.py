"""Export validation collects every failing output, over every batch, before raising once."""

from __future__ import annotations

import numpy as np
import pytest

from frugalml.errors import ExportError
from frugalml.export import Tolerance, compare_outputs


def test_all_failures_are_listed() -> None:
    ref = {"a": np.ones((2, 3), np.float32), "b": np.ones((2, 3), np.float32),
           "c": np.ones((2, 3), np.float32)}
    got = {"a": ref["a"] + 0.5, "b": np.ones((2, 4), np.float32)}
    with pytest.raises(ExportError) as err:
        compare_outputs(ref, got, Tolerance(atol=1e-3, rtol=0.0, min_cosine=0.99))
    text = str(err.value)
    assert "a: max abs error 0.5 (tolerance 0.001)" in text
    assert "b: shape (2, 4), source gives (2, 3)" in text
    assert "c: missing" in text


def test_close_outputs_pass_with_numbers() -> None:
    ref = {"a": np.arange(6, dtype=np.float32).reshape(2, 3)}
    checks = compare_outputs(ref, {"a": ref["a"] + 1e-6}, Tolerance(atol=1e-5, rtol=0.0))
    assert checks[0].passed and checks[0].max_abs_error == pytest.approx(1e-6, rel=0.2)
    assert checks[0].max_rel_error == pytest.approx(1e-6 / 5, rel=0.2)


def test_a_later_batch_that_diverges_fails_the_output() -> None:
    """The second batch (another batch size) is where a frozen trace shows up."""
    good = {"y": np.ones((1, 4), np.float32)}
    refs = [good, {"y": np.full((8, 4), -4.0, np.float32)}]
    gots = [good, {"y": np.full((8, 4), -6.0, np.float32)}]
    with pytest.raises(ExportError, match=r"y: max abs error 2"):
        compare_outputs(refs, gots)


def test_rtol_scales_with_output_magnitude() -> None:
    ref = {"logits": np.full((1, 5), 1000.0, np.float32)}
    got = {"logits": ref["logits"] + 5e-3}
    assert compare_outputs(ref, got, Tolerance(atol=1e-4, rtol=1e-5))[0].passed
    with pytest.raises(ExportError):
        compare_outputs(ref, got, Tolerance(atol=1e-4, rtol=0.0))


def test_all_zero_rows_agree() -> None:
    ref = {"relu": np.zeros((2, 3), np.float32)}
    assert compare_outputs(ref, {"relu": ref["relu"].copy()})[0].min_cosine == 1.0


def test_padded_positions_are_left_out_of_per_token_outputs() -> None:
    """A left-padded decoder's logits at padding are undefined: only real tokens count."""
    mask = np.array([[0, 0, 1, 1], [1, 1, 1, 1]], np.int64)
    ref = {"logits": np.ones((2, 4, 5), np.float32), "pooled": np.ones((2, 5), np.float32)}
    got = {"logits": ref["logits"].copy(), "pooled": ref["pooled"].copy()}
    got["logits"][0, :2] = -30.0  # garbage where the mask says padding
    checks = compare_outputs(ref, got, feeds={"attention_mask": mask})
    assert all(c.passed and c.max_abs_error == 0.0 for c in checks)
    got["logits"][0, 2, 0] = 1.5  # a real token that differs still fails
    with pytest.raises(ExportError, match=r"logits: max abs error 0.5"):
        compare_outputs(ref, got, feeds={"attention_mask": mask})
    with pytest.raises(ExportError, match=r"logits: max abs error 31"):
        compare_outputs(ref, got)  # without the feeds every position counts
