"""Every kept GGUF block type as ONNX Runtime nodes: a MatMul whose weight is a tensor's decoded
rows becomes MatMulNBits (with zero points and, for offset types, the block-sum product), an
embedding table of 8-bit codes becomes GatherBlockQuantized. Fed one-hot rows (which int8
activation quantization keeps exactly), the rewritten graph gives back the file's weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from frugalml.quantize._gguf_blocks import _LAYOUT, KINDS, decode, read
from frugalml.quantize.gguf_grid import _match
from tests.quantize.test_gguf_blocks import _random_blocks

K, N, VOCAB = 256, 64, 48


def _graph(weight: np.ndarray, table: np.ndarray) -> object:
    from onnx import TensorProto, helper, numpy_helper

    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "s", K]),
              helper.make_tensor_value_info("ids", TensorProto.INT64, [1, "t"])]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, "s", N]),
               helper.make_tensor_value_info("e", TensorProto.FLOAT, [1, "t", K])]
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"], name="proj"),
             helper.make_node("Gather", ["table", "ids"], ["e"], name="embed")]
    graph = helper.make_graph(nodes, "g", inputs, outputs, [
        numpy_helper.from_array(weight, "w"), numpy_helper.from_array(table, "table")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("kind", KINDS)
def test_each_block_type_runs_as_the_files_weights(kind: str, tmp_path: Path) -> None:
    import onnxruntime as ort

    from frugalml.quantize._gguf_nodes import rewrite

    size = _LAYOUT[kind][1]  # values per stored block
    proj = read(kind, _random_blocks(kind, N, K // size, seed=1))
    table = read(kind, _random_blocks(kind, VOCAB, K // size, seed=2))
    tensors = [("blk.0.proj", kind, proj, decode(proj)), ("token_embd", kind, table,
                                                          decode(table))]
    rows = np.random.default_rng(3).permutation(N)  # the export's rows in another order
    model = _graph(np.ascontiguousarray(decode(proj)[rows].T), decode(table))
    kept = rewrite(model.graph, tensors, _match)
    ops = sorted(n.op_type for n in model.graph.node)
    assert "proj" in kept["transcoded"], kept
    assert ops.count("MatMulNBits") == 1 and ("ReduceSum" in ops) == (proj.m is not None)
    gathered = proj.bits == 8 and proj.m is None
    assert ("embed" in kept["transcoded"]) == gathered, kept
    if not gathered:
        assert "only tables of 8-bit codes" in kept["left_as_exported"]["embed"]
    path = tmp_path / "m.onnx"
    path.write_bytes(model.SerializeToString())
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ids = np.arange(VOCAB, dtype=np.int64)[None]
    y, e = session.run(None, {"x": np.eye(K, dtype=np.float32)[None], "ids": ids})
    expected = decode(proj)[rows].T
    scale = float(np.abs(expected).max())
    np.testing.assert_allclose(y[0], expected, rtol=0, atol=2e-5 * scale)
    np.testing.assert_array_equal(e[0], decode(table))  # gathered codes times scales


@pytest.mark.parametrize("kind", ["Q8_0", "Q6_K"])
def test_a_tied_table_is_stored_once_for_its_gather_and_its_output_layer(
        kind: str, tmp_path: Path) -> None:
    """Embedding and output layer tied (SmolLM2, Gemma 3: the table is most of the bytes):
    both nodes read one initializer of codes, and each computes with the file's values."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from frugalml.quantize._gguf_nodes import rewrite

    table = read(kind, _random_blocks(kind, VOCAB, K // _LAYOUT[kind][1], seed=5))
    values = decode(table)
    graph = helper.make_graph(
        [helper.make_node("Gather", ["embd", "ids"], ["h"], name="embed"),
         helper.make_node("MatMul", ["h", "head"], ["logits"], name="lm_head")], "g",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, [1, "t"])],
        [helper.make_tensor_value_info("h", TensorProto.FLOAT, [1, "t", K]),
         helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, "t", VOCAB])],
        [numpy_helper.from_array(values, "embd"),
         numpy_helper.from_array(np.ascontiguousarray(values.T), "head")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    kept = rewrite(model.graph, [("token_embd", kind, table, values)], _match)
    assert set(kept["transcoded"]) == {"embed", "lm_head"}
    codes = [i for i in model.graph.initializer if i.data_type == TensorProto.UINT8
             and len(i.dims) == 3 and i.dims[2] == table.block]
    assert len(codes) == 1  # one table of codes ...
    readers = [n.op_type for n in model.graph.node if codes[0].name in n.input]
    assert sorted(readers) == ["GatherBlockQuantized", "MatMulNBits"]  # ... read by both
    path = tmp_path / "tied.onnx"
    path.write_bytes(model.SerializeToString())
    assert path.stat().st_size < 2 * VOCAB * K  # the codes once (plus scales), not twice
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ids = np.array([[0, 5, 47, 5]], np.int64)
    h, logits = session.run(None, {"ids": ids})
    np.testing.assert_array_equal(h[0], values[ids[0]])
    want = h[0] @ values.T
    cosine = (logits[0] * want).sum(-1) / np.linalg.norm(logits[0], axis=-1) / np.linalg.norm(
        want, axis=-1)
    assert cosine.min() > 0.999  # int8 activations inside MatMulNBits
