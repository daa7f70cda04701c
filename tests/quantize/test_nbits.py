"""Blockwise 4-bit DequantizeLinear + MatMul -> MatMulNBits: the same weights, bit for bit
(the rewritten node run with float compute equals numpy over the dequantized weights), for
signed codes without zero points (NNCF's INT4_SYM) and unsigned codes with them (INT4_ASYM)."""

from __future__ import annotations

import numpy as np
import pytest

K, N, BLOCK = 96, 40, 32


def _graph(signed: bool, zero_points: bool, readers: int = 1) -> object:
    from onnx import TensorProto, helper

    rng = np.random.default_rng(3)
    low, high = (-8, 8) if signed else (0, 16)
    kind = TensorProto.INT4 if signed else TensorProto.UINT4
    codes = rng.integers(low, high, (K, N))
    inits = [helper.make_tensor("w_q", kind, (K, N), codes.reshape(-1).tolist()),
             helper.make_tensor("w_s", TensorProto.FLOAT, (K // BLOCK, N),
                                rng.uniform(0.01, 0.1, (K // BLOCK, N)).reshape(-1).tolist())]
    if zero_points:
        inits.append(helper.make_tensor("w_z", kind, (K // BLOCK, N),
                                        rng.integers(low, high, (K // BLOCK, N)).reshape(-1)))
    nodes = [helper.make_node("DequantizeLinear", [i.name for i in inits], ["w"], name="dq",
                              axis=0, block_size=BLOCK)]
    outputs = []
    for r in range(readers):
        nodes.append(helper.make_node("MatMul", ["x", "w"], [f"y{r}"], name=f"fc{r}"))
        outputs.append(helper.make_tensor_value_info(f"y{r}", TensorProto.FLOAT, [1, 5, N]))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [1, 5, K])], outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])


def _dequantized(model: object) -> np.ndarray:
    from onnx import numpy_helper

    arrays = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    zero = arrays.get("w_z", np.zeros_like(arrays["w_s"], dtype=np.int8)).astype(np.float32)
    codes = arrays["w_q"].astype(np.float32)
    return (codes - np.repeat(zero, BLOCK, 0)) * np.repeat(arrays["w_s"], BLOCK, 0)


def _run(model: object, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


@pytest.mark.parametrize(("signed", "zero_points"), [(True, False), (False, True),
                                                     (False, False), (True, True)])
def test_rewrite_keeps_the_weights_exactly(signed: bool, zero_points: bool) -> None:
    from onnx import helper

    from frugalml.quantize._nbits import blockwise_to_matmulnbits

    model = _graph(signed, zero_points)
    x = np.random.default_rng(0).normal(0, 1, (1, 5, K)).astype(np.float32)
    expected = x @ _dequantized(model)  # (ONNX Runtime itself fuses DQ + MatMul at level 4)
    assert blockwise_to_matmulnbits(model) == ("fc0",)
    (node,) = model.graph.node
    assert node.op_type == "MatMulNBits" and not model.graph.initializer[0].name == "w_q"
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    assert (attrs["K"], attrs["N"], attrs["bits"], attrs["block_size"],
            attrs["accuracy_level"]) == (K, N, 4, BLOCK, 4)
    assert np.corrcoef(_run(model, x).ravel(), expected.ravel())[0, 1] > 0.999  # int8 inputs
    node.attribute.remove(next(a for a in node.attribute if a.name == "accuracy_level"))
    node.attribute.append(helper.make_attribute("accuracy_level", 1))  # float compute
    np.testing.assert_allclose(_run(model, x), expected, rtol=1e-5, atol=2e-5)


def test_a_weight_read_twice_is_left_as_it_is() -> None:
    from frugalml.quantize._nbits import blockwise_to_matmulnbits

    model = _graph(True, False, readers=2)
    assert blockwise_to_matmulnbits(model) == ()
    assert [n.op_type for n in model.graph.node] == ["DequantizeLinear", "MatMul", "MatMul"]
