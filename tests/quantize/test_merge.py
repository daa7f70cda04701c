"""Sibling 4-bit layers (one input, like a decoder's q/k/v) merged into one MatMulNBits and
split after: every output unchanged, with and without GGUF Q4_1 offsets; layers that read
different inputs or differ in their attributes are left alone."""

from __future__ import annotations

import numpy as np
import pytest

K, BLOCK, SIZES = 64, 32, (48, 32, 32)


def _graph(offsets: bool, other_block: bool = False) -> object:
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(5)
    inits, nodes, outputs = [], [], []
    for i, n in enumerate(SIZES):
        block = 16 if other_block and i == 2 else BLOCK
        blocks = K // block
        inits += [numpy_helper.from_array(rng.integers(0, 256, (n, blocks, block // 2), np.uint8),
                                          f"b{i}"),
                  numpy_helper.from_array(rng.uniform(0.01, 0.1, n * blocks).astype(np.float32),
                                          f"s{i}"),
                  numpy_helper.from_array(rng.integers(0, 256, n * ((blocks + 1) // 2), np.uint8),
                                          f"z{i}")]
        out = f"codes{i}" if offsets else f"y{i}"
        nodes.append(helper.make_node("MatMulNBits", ["x", f"b{i}", f"s{i}", f"z{i}"], [out],
                                      domain="com.microsoft", name=f"fc{i}", K=K, N=n, bits=4,
                                      block_size=block, accuracy_level=4))
        if offsets:
            inits.append(numpy_helper.from_array(
                rng.normal(0, 1, (K // BLOCK, n)).astype(np.float32), f"o{i}"))
            nodes += [helper.make_node("MatMul", ["sums", f"o{i}"], [f"off{i}"]),
                      helper.make_node("Add", [out, f"off{i}"], [f"y{i}"], name=f"add{i}")]
        outputs.append(helper.make_tensor_value_info(f"y{i}", TensorProto.FLOAT, [1, 3, n]))
    if offsets:  # the input's sums over each block of 32, as the gguf backend writes them
        inits += [numpy_helper.from_array(np.array([0, 0, K // BLOCK, BLOCK], np.int64), "shape"),
                  numpy_helper.from_array(np.array([-1], np.int64), "axis")]
        nodes[:0] = [helper.make_node("Reshape", ["x", "shape"], ["by_block"]),
                     helper.make_node("ReduceSum", ["by_block", "axis"], ["sums"], keepdims=0)]
    graph = helper.make_graph(nodes, "siblings", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [1, 3, K])], outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21),
                                                   helper.make_opsetid("com.microsoft", 1)])


def _run(model: object, x: np.ndarray) -> list[np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})


@pytest.mark.parametrize("offsets", [False, True], ids=["plain", "q4_1-offsets"])
def test_siblings_merge_and_every_output_stays(offsets: bool) -> None:
    from frugalml.quantize._merge import merge_sibling_matmulnbits

    model = _graph(offsets)
    x = np.random.default_rng(0).normal(0, 1, (1, 3, K)).astype(np.float32)
    before = _run(model, x)
    assert merge_sibling_matmulnbits(model.graph) == 2
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("MatMulNBits") == 1 and ops.count("Split") == 1
    assert ops.count("MatMul") == ops.count("Add") == (1 if offsets else 0)
    (merged,) = [n for n in model.graph.node if n.op_type == "MatMulNBits"]
    assert next(a.i for a in merged.attribute if a.name == "N") == sum(SIZES)
    for got, want in zip(_run(model, x), before, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_layers_that_differ_are_left_alone() -> None:
    from frugalml.quantize._merge import merge_sibling_matmulnbits

    model = _graph(False, other_block=True)  # the third has blocks of 16
    x = np.random.default_rng(1).normal(0, 1, (1, 3, K)).astype(np.float32)
    before = _run(model, x)
    assert merge_sibling_matmulnbits(model.graph) == 1
    assert [n.op_type for n in model.graph.node].count("MatMulNBits") == 2
    for got, want in zip(_run(model, x), before, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
