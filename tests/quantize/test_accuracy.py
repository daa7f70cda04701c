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


def test_scoring_stops_at_the_deadline_and_says_after_how_many_items(tmp_path: Path) -> None:
    """--time-budget is honoured inside a candidate's scoring: at the deadline the batch in
    hand finishes and the report says how many items were scored; the partial FP32 outputs
    are not kept for the next candidate."""
    import time

    rng = np.random.default_rng(4)
    items = [{"x": rng.normal(0, 1, 64).astype(np.float32)} for _ in range(80)]
    data = make_set(from_items(items, labels=[i % 10 for i in range(80)]), calibration_size=16)
    fp32 = mlp_onnx(tmp_path / "fp32.onnx")
    accuracy._REFERENCE_OUTPUTS.clear()
    cut = accuracy.measure(fp32, fp32, data, Budget(), items=64, deadline=time.monotonic())
    batch = accuracy._BATCH[accuracy.Task.CLASSIFICATION]
    assert cut.stopped_after_items == cut.items == min(batch, 64) < 64
    assert not accuracy._REFERENCE_OUTPUTS
    whole = accuracy.measure(fp32, fp32, data, Budget(), items=64,
                             deadline=time.monotonic() + 3600)
    assert whole.stopped_after_items is None and whole.items == 64


def test_a_cache_entry_its_reader_refuses_is_rebuilt(tmp_path: Path) -> None:
    """A quantize entry scored short by the time budget is not reused by a later run with
    time to score it whole."""
    import dataclasses
    import json

    from frugalml.core.cache import cached_stage

    @dataclasses.dataclass
    class Rec:
        path: Path
        stopped: bool

        def to_dict(self) -> dict:
            return {"path": str(self.path), "accuracy": {"stopped_after_items": self.stopped}}

    def build(stopped: bool):  # type: ignore[no-untyped-def]
        def run(tmp: Path) -> Rec:
            (tmp / "m").write_text(str(stopped))
            return Rec(tmp / "m", stopped)
        return run

    def load(d: dict) -> Rec:
        return Rec(Path(d["path"]), d["accuracy"]["stopped_after_items"])

    def whole(d: dict) -> bool:
        return not d["accuracy"]["stopped_after_items"]

    assert not cached_stage(tmp_path, "q", "k" * 24, build(True), load, whole)[1]
    rebuilt, hit = cached_stage(tmp_path, "q", "k" * 24, build(False), load, whole)
    assert not hit and rebuilt.path.read_text() == "False"
    assert cached_stage(tmp_path, "q", "k" * 24, build(True), load, whole)[1]
    assert json.loads((tmp_path / f"q-{'k' * 24}" / "record.json").read_text())[
        "accuracy"]["stopped_after_items"] is False
