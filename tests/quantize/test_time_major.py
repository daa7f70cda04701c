"""A model with no state but a time-major input (``[T, batch, F]``: batch on axis 1) and a 0-d
scale: read, calibrated, quantized and scored with ``--batch-axis x=1 --constant scale=...``,
each item a stream of one step."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from frugalml.calibration.streams import stream_set
from frugalml.errors import CalibrationError
from frugalml.quantize.api import quantize
from frugalml.runtime.roles import parse_roles

T, F, C = 6, 16, 8


def _time_major(dest: Path) -> Path:
    rng = np.random.default_rng(0)
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["x"], ["pooled"], axes=[0], keepdims=0),
         helper.make_node("Mul", ["pooled", "scale"], ["scaled"]),
         helper.make_node("MatMul", ["scaled", "w"], ["y"])],
        "time_major",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [T, "batch", F]),
         helper.make_tensor_value_info("scale", TensorProto.FLOAT, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", C])],
        [numpy_helper.from_array(rng.normal(size=(F, C)).astype(np.float32), "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = dest / "time_major.onnx"
    onnx.save(model, str(path))
    return path


def test_a_time_major_input_and_a_scalar_are_read_and_scored(tmp_path: Path) -> None:
    model = _time_major(tmp_path)
    data_file = tmp_path / "items.npz"
    np.savez(data_file, x=np.random.default_rng(1).normal(size=(40, T, F)).astype(np.float32))
    roles = parse_roles(batch_axis=["x=1"], constant=["scale=2.0"])
    data = stream_set(data_file, roles, model, calibration_size=20)
    feeds, _ = next(data.batches("evaluation", batch_size=5))
    assert feeds["x"].shape == (T, 5, F) and feeds["scale"].shape == ()
    record = quantize(model, data, tmp_path / "q", recipe="int8-dynamic", allow_over_budget=True)
    accuracy = record.accuracy
    assert accuracy["task"] == "streaming" and accuracy["items"] == 20
    assert accuracy["reference"]["steps"] == 20  # one step per item
    assert accuracy["candidate"]["y_mean_cosine"] > 0.99
    assert record.int8_activation_layers  # the MatMul was quantized
    with pytest.raises(CalibrationError, match=r"a chunk of 'x' is \(1, 6, 16\) with its batch "
                                               r"axis 0.* --batch-axis"):
        stream_set(data_file, parse_roles(constant=["scale=2.0"]), model, calibration_size=20)
