"""PP-OCRv4's text detector (DATA.md; paddle2onnx, weights in Constant nodes) on rendered text
pages: the same path as any model, scored per output. INT8 misses a 0.99 cosine budget through
both backends (measured on a Zen 4: ONNX Runtime 0.90, NNCF 0.95; `frugal diagnose` needed
every node in float), so quantize refuses it and says by how much."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench._data import ppocr_det_model, text_pages
from frugalml.errors import QuantizationError
from frugalml.quantize.api import quantize


@pytest.fixture(scope="module")
def pages() -> object:
    from frugalml.calibration import make_set
    from frugalml.calibration.arrays import ArraySource

    return make_set(ArraySource({"x": text_pages(160)}), calibration_size=80)


@pytest.mark.parametrize("backend", ["onnxruntime", "nncf"])
def test_the_text_detector_is_scored_per_output(pages: object, tmp_path: Path,
                                                backend: str) -> None:
    record = quantize(ppocr_det_model(), pages, tmp_path / "int8", backend=backend,
                      eval_items=80, allow_over_budget=True)
    acc = record.accuracy
    assert acc["task"] == "outputs" and acc["items"] == 80
    # One output, a one-channel probability map [N, 1, H, W]: no channel groups to score.
    assert [(p["part"], p["budgeted"]) for p in acc["parts"]] == [("sigmoid_0.tmp_0", True)]
    cosine = acc["parts"][0]["mean_cosine_to_fp32"]
    assert 0.8 < cosine < 0.99 and not acc["within_budget"]
    assert len(record.int8_activation_layers) >= 40  # the Constant-node weights were found
    assert record.range_safety["output_tail"] == ["p2o.Add.280", "p2o.Sigmoid.0"]


def test_quantize_refuses_it_naming_the_output(pages: object, tmp_path: Path) -> None:
    with pytest.raises(QuantizationError,
                       match=r"mean cosine to FP32 0\.\d+ \(limit 0\.99\): the whole of sigmoid_0"):
        quantize(ppocr_det_model(), pages, tmp_path / "int8", eval_items=80)
    assert not (tmp_path / "int8").exists()
