"""Scoring against FP32: the FP32 outputs are reused across candidates, never when stale."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from frugalml.calibration import from_items, make_set
from frugalml.quantize import accuracy
from frugalml.quantize.recipe import Budget
from tests.quantize.test_contract import mlp_onnx


def test_reference_outputs_are_reused_only_for_the_same_file_and_data(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    items = [{"x": rng.normal(0, 1, 64).astype(np.float32)} for _ in range(80)]
    data = make_set(from_items(items, labels=[i % 10 for i in range(80)]), calibration_size=16)
    fp32 = mlp_onnx(tmp_path / "fp32.onnx")
    same = mlp_onnx(tmp_path / "same.onnx")
    first = accuracy.measure(fp32, same, data, Budget(), items=64)
    assert first.candidate["top1_agreement_with_fp32"] == 1.0
    assert len(accuracy._REFERENCE_OUTPUTS) == 1
    cached = next(iter(accuracy._REFERENCE_OUTPUTS.values()))
    assert sum(len(r["logits"]) for r in cached) == 64  # every output of each batch, by name
    assert accuracy.measure(fp32, same, data, Budget(), items=64) == first

    # Rewriting the FP32 file with other weights must not reuse its old outputs.
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(fp32))
    w2 = model.graph.initializer[2]
    w2.CopyFrom(numpy_helper.from_array(-numpy_helper.to_array(w2), w2.name))
    onnx.save(model, str(fp32))
    os.utime(fp32, ns=(1, 1))  # same size and path: only the modification time tells
    flipped = accuracy.measure(fp32, same, data, Budget(), items=64)
    assert flipped.candidate["mean_cosine_to_fp32"] < -0.99


def test_a_drop_of_exactly_the_budget_meets_it() -> None:
    """2 of 200 items: 0.71 - 0.70 is 1.0000000000000009 points in floating point."""
    from frugalml.calibration.evaluate import EmbeddingScore
    from frugalml.calibration.metrics import drop_points

    assert 100.0 * (0.71 - 0.70) > 1.0 and drop_points(0.71, 0.70) == 1.0
    assert drop_points(0.70, 0.71) == -1.0
    fields = {f: 0 for f in EmbeddingScore.__dataclass_fields__}
    score = EmbeddingScore(**{**fields, "reference_accuracy": 0.71, "candidate_accuracy": 0.70})
    assert score.accuracy_drop_points == 1.0
