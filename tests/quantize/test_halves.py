"""GGUF offsets and table scales stored as float16 where exact (quantize._halves): the file
gets smaller and ONNX Runtime, folding the widening at load, computes the same numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, numpy_helper

from tests.quantize.test_gguf_grid import _gguf, _graph


def _outputs(model: onnx.ModelProto, ids: np.ndarray, level: str) -> np.ndarray:
    options = ort.SessionOptions()
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    return session.run(["y"], {"ids": ids})[0]


def _transcoded(tmp_path: Path) -> onnx.ModelProto:
    from frugalml.quantize._gguf_nodes import rewrite
    from frugalml.quantize.gguf_grid import _match, read_tensors

    decoded = _gguf(tmp_path / "m.gguf")
    model = _graph(decoded)
    rewrite(model.graph, read_tensors(tmp_path / "m.gguf"), _match)
    return model


def test_offsets_and_table_scales_are_stored_as_float16_and_compute_the_same(
        tmp_path: Path) -> None:
    from frugalml.quantize._halves import store_halves

    model = _transcoded(tmp_path)
    before = onnx.ModelProto()
    before.CopyFrom(model)
    report = store_halves(model.graph)
    # the Q4_1 layer's offsets (float16 m, rebuilt on the float32 scales) and the Q8_0
    # table's scales; MatMulNBits's own scales stay float32 (see the module docstring)
    assert (report["offsets"], report["scales"]) == (1, 1), report
    inits = {i.name: i for i in model.graph.initializer}
    assert "l41_offsets" not in inits and inits["l41_offsets_m_f16"].data_type == \
        TensorProto.FLOAT16
    assert all(inits[n.input[2]].data_type == TensorProto.FLOAT
               for n in model.graph.node if n.op_type == "MatMulNBits")
    saved = len(before.SerializeToString()) - len(model.SerializeToString())
    assert abs(saved - report["bytes_saved"]) < 1024 and report["bytes_saved"] > 0
    ids = np.array([[3, 17, 95, 0, 42]], np.int64)
    want = _outputs(before, ids, "ORT_ENABLE_ALL")
    np.testing.assert_array_equal(_outputs(model, ids, "ORT_ENABLE_ALL"), want)
    # computed per call with optimisations off: the same tables, a float MatMul's rounding
    scale = float(np.abs(want).max())
    np.testing.assert_allclose(_outputs(model, ids, "ORT_DISABLE_ALL"), want, rtol=0,
                               atol=1e-5 * scale)


def test_an_offset_table_that_float16_cannot_rebuild_stays_float32(tmp_path: Path) -> None:
    from frugalml.quantize._halves import store_halves

    model = _transcoded(tmp_path)
    table = next(i for i in model.graph.initializer if i.name == "l41_offsets")
    values = numpy_helper.to_array(table) + np.float32(1e-3 / 3)  # m no longer a float16
    table.CopyFrom(numpy_helper.from_array(values, table.name))
    report = store_halves(model.graph)
    assert report["offsets"] == 0, report
    kept = next(i for i in model.graph.initializer if i.name == "l41_offsets")
    np.testing.assert_array_equal(numpy_helper.to_array(kept), values)
