"""Calibration streams through ONNX Runtime in bounded memory, whatever the item count."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from frugalml.quantize.onnxruntime import MERGE_EVERY, StreamingReader


def _items(n: int) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    return [{"x": rng.normal(size=(1, 8)).astype(np.float32)} for _ in range(n)]


def _drain(reader: StreamingReader) -> list[dict[str, np.ndarray]]:
    out = []
    while (item := reader.get_next()) is not None:
        out.append(item)
    return out


def test_reader_repeats_the_last_item_only_on_exact_multiples() -> None:
    items = _items(2 * MERGE_EVERY)
    got = _drain(StreamingReader(iter(items)))
    assert len(got) == 2 * MERGE_EVERY + 1 and got[-1] is items[-1]
    assert len(_drain(StreamingReader(iter(_items(MERGE_EVERY + 3))))) == MERGE_EVERY + 3


@pytest.mark.parametrize("count", [MERGE_EVERY * 2, MERGE_EVERY * 2 + 5])
def test_onnxruntime_calibrates_any_item_count(tmp_path: Path, count: int) -> None:
    """ORT 1.32 alone fails with 'No data is collected' at exact multiples of the merge size."""
    from onnxruntime import quantization as q

    weight = numpy_helper.from_array(np.random.default_rng(1).normal(size=(8, 4))
                                     .astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], [weight])
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]),
                    str(tmp_path / "m.onnx"))
    q.quantize_static(str(tmp_path / "m.onnx"), str(tmp_path / "q.onnx"),
                      StreamingReader(iter(_items(count))), quant_format=q.QuantFormat.QDQ,
                      extra_options={"CalibMaxIntermediateOutputs": MERGE_EVERY})
    ops = {n.op_type for n in onnx.load(str(tmp_path / "q.onnx")).graph.node}
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
