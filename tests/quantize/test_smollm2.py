"""SmolLM2-135M (a real decoder, from its GGUF) W4A8 on tiny-shakespeare perplexity.

The GGUF's weights already sit on a 4-bit group-32 asymmetric grid, so 4-bit g32 asymmetric
would be lossless; the test uses g128 symmetric (576-wide inputs fall back to g64, which
divides them). Calibration: 32 windows of 128 tokens; evaluation: 8 other windows (1,016
scored tokens), paired: FP32 and quantized see the same tokens. Measured on a Zen 3 (family 25
model 1) at 32 / 8 windows: AWQ + scale estimation +13.0 %, rounding +21.6 %, in 93 s; at
64 / 16: +12.6 % and +19.8 % in 116 s (bench/quantize_table.py scores 64 windows)."""

from __future__ import annotations

from pathlib import Path

import pytest

from frugalml.quantize.api import quantize
from frugalml.quantize.recipe import get_recipe

EVAL_WINDOWS = 8
CALIBRATION_WINDOWS = 32


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    from bench._data import smollm2_gguf, tiny_shakespeare
    from frugalml.calibration import TokenWindows, make_set
    from frugalml.export import export
    from frugalml.export.gguf import gguf_model_dir

    root = tmp_path_factory.mktemp("smollm2")
    # The user cache, as `frugal deploy` uses it: the SmolLM2 deploy test dequantized it already.
    model_dir = gguf_model_dir(smollm2_gguf())
    record = export(model_dir, root / "export", task="text-generation", simplify_graph=False)
    data = make_set(TokenWindows(tiny_shakespeare(), model_dir, window=128),
                    calibration_size=CALIBRATION_WINDOWS)
    return record.path, data


def _w4a8(model: Path, data: object, out: Path, methods: tuple[str, ...]) -> dict:
    recipe = get_recipe("w4a8", group_size=128, weight_symmetric=True, weight_methods=methods,
                        calibration_items=CALIBRATION_WINDOWS)
    record = quantize(model, data, out, recipe=recipe, backend="nncf", output_format="openvino",
                      target="x86-avx2", eval_items=EVAL_WINDOWS, allow_over_budget=True)
    assert record.accuracy["task"] == "language-model"
    assert record.activations.startswith("dynamic int8 in OpenVINO")
    return record.accuracy


def test_data_aware_w4a8_stays_within_20_percent_perplexity_and_beats_rounding(
        smollm2: tuple[Path, object], tmp_path: Path) -> None:
    model, data = smollm2
    aware = _w4a8(model, data, tmp_path / "awq", ("awq", "scale_estimation"))
    plain = _w4a8(model, data, tmp_path / "rtn", ())
    assert aware["items"] == plain["items"] == EVAL_WINDOWS * 127
    fp32 = aware["reference"]["perplexity"]
    assert 20 < fp32 < 200  # a working decoder on Shakespeare, not noise (vocabulary 49,152)
    rise = aware["candidate"]["perplexity_increase_pct"]
    assert rise <= 20.0 and aware["within_budget"]
    # Measured here on these 8 windows: AWQ + scale estimation +13.0 %, rounding +21.6 %.
    assert plain["candidate"]["perplexity_increase_pct"] >= rise + 5.0
    size = next(c for c in aware["checks"] if c["name"] == "size vs FP32")
    assert size["value"] <= 0.2  # 4-bit layers, int8 embedding table shared with the head
