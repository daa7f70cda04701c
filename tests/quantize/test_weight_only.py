"""Weight-only INT8 on a tiny text-defined model: int8 storage, float-close outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

from frugalml.quantize._weight_only import weight_only_int8
from tests.helpers import assert_outputs_close

TEXT = """
<ir_version: 10, opset_import: ["" : 21]>
tiny (int64[N] ids) => (float[N, 4] y) {
    e = Gather(table, ids)
    y = MatMul(e, w)
}
"""


def _model() -> onnx.ModelProto:
    model = onnx.parser.parse_model(TEXT)
    rng = np.random.default_rng(0)
    model.graph.initializer.extend([
        numpy_helper.from_array(rng.normal(size=(50, 8)).astype(np.float32), "table"),
        numpy_helper.from_array(rng.normal(size=(8, 4)).astype(np.float32), "w"),
    ])
    model.graph.node[0].name, model.graph.node[1].name = "gather", "matmul"
    return model


def _run(model: onnx.ModelProto, path: Path, ids: np.ndarray) -> dict[str, np.ndarray]:
    onnx.save(model, str(path))
    return {"y": ort.InferenceSession(str(path)).run(["y"], {"ids": ids})[0]}


def test_weight_only_keeps_outputs_close(tmp_path: Path) -> None:
    ids = np.array([0, 7, 49, 7], dtype=np.int64)
    ref = _run(_model(), tmp_path / "ref.onnx", ids)
    model = _model()
    done = weight_only_int8(model, {"gather": (0, 0), "matmul": (1, 1)})
    onnx.checker.check_model(model)
    assert done == ("gather", "matmul")
    int8 = [i for i in model.graph.initializer if i.data_type == onnx.TensorProto.INT8]
    assert {i.name for i in int8} == {"table_int8", "w_int8", "w_zero"}
    assert_outputs_close("weight-only int8", ref, _run(model, tmp_path / "q.onnx", ids),
                         atol=0.05, min_cosine=0.999)


TIED = """
<ir_version: 10, opset_import: ["" : 21]>
tied (int64[N] ids) => (float[N, 50] logits) {
    e = Gather(table, ids)
    h = Tanh(e)
    head = Transpose <perm = [1, 0]> (table)
    logits = MatMul(h, head)
}
"""


def test_a_tied_embedding_table_is_stored_once_in_int8(tmp_path: Path) -> None:
    """A language model's output head reads the embedding table transposed: both readers
    must share one int8 copy (SmolLM2's table is a fifth of its weights)."""
    model = onnx.parser.parse_model(TIED)
    rng = np.random.default_rng(1)
    model.graph.initializer.append(numpy_helper.from_array(
        rng.normal(size=(50, 8)).astype(np.float32), "table"))
    model.graph.node[0].name = "gather"
    ids = np.array([3, 9, 49], dtype=np.int64)
    path = tmp_path / "ref.onnx"
    onnx.save(model, str(path))
    ref = {"y": ort.InferenceSession(str(path)).run(["logits"], {"ids": ids})[0]}
    assert weight_only_int8(model, {"gather": (0, 0)}) == ("gather",)
    onnx.checker.check_model(model)
    floats = [i.name for i in model.graph.initializer if i.data_type == onnx.TensorProto.FLOAT
              and numpy_helper.to_array(i).size >= 50 * 8]
    assert floats == [] and sum(i.name == "table_int8" for i in model.graph.initializer) == 1
    onnx.save(model, str(tmp_path / "q.onnx"))
    got = {"y": ort.InferenceSession(str(tmp_path / "q.onnx")).run(["logits"], {"ids": ids})[0]}
    assert_outputs_close("tied int8 table", ref, got, atol=0.05, min_cosine=0.999)
