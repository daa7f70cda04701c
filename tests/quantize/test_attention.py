"""The fused Attention -> QAttention rewrite: exact where it rewrites, refusing where it cannot,
and never dropping a padding mask (ONNX Runtime's quantizer drops an attention bias silently)."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from frugalml.quantize._attention import prepare_attention

BATCH, SEQ, HIDDEN, HEADS = 2, 5, 8, 2


def _graph(bias_reads_x: bool = False) -> onnx.ModelProto:
    """x [2, 5, 8] and a 2-D padding mask -> one com.microsoft Attention, shaped as onnxscript's
    ort_fusions writes it: the packed weight a Concat, sizes an attribute, the mask a bias."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(size=(HIDDEN, HIDDEN)).astype(np.float32), n)
             for n in ("wq", "wk", "wv")]
    inits += [numpy_helper.from_array(rng.normal(size=3 * HIDDEN).astype(np.float32), "b"),
              numpy_helper.from_array(np.array([1, 2], np.int64), "axes"),
              numpy_helper.from_array(np.array([BATCH, 1, SEQ, SEQ], np.int64), "shape"),
              numpy_helper.from_array(np.array(1.0, np.float32), "one"),
              numpy_helper.from_array(np.array(np.finfo(np.float32).min, np.float32), "low")]
    nodes = [helper.make_node("Concat", ["wq", "wk", "wv"], ["w"], axis=1),
             helper.make_node("Unsqueeze", ["mask", "axes"], ["m4"]),
             helper.make_node("Expand", ["m4", "shape"], ["mx"]),
             helper.make_node("Cast", ["mx"], ["mf"], to=TensorProto.FLOAT),
             helper.make_node("Sub", ["one", "mf"], ["inv"]),
             helper.make_node("Cast", ["inv"], ["pad"], to=TensorProto.BOOL),
             helper.make_node("Where", ["pad", "low", "inv"], ["bias0"])]
    bias = "bias0"
    if bias_reads_x:  # a bias that depends on the activations too: no mask_index can say it
        nodes += [helper.make_node("ReduceMean", ["x"], ["xm"], keepdims=0),
                  helper.make_node("Add", ["bias0", "xm"], ["bias1"])]
        bias = "bias1"
    nodes.append(helper.make_node("Attention", ["x", "w", "b", "", "", bias], ["y"],
                                  domain="com.microsoft", name="attn", num_heads=HEADS,
                                  qkv_hidden_sizes=[HIDDEN] * 3))
    graph = helper.make_graph(
        nodes, "attention",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [BATCH, SEQ, HIDDEN]),
         helper.make_tensor_value_info("mask", TensorProto.INT64, [BATCH, SEQ])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [BATCH, SEQ, HIDDEN])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21),
                                                   helper.make_opsetid("com.microsoft", 1)])


def _run(model: onnx.ModelProto, feeds: dict) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(["y"], feeds)[0]


FEEDS = {"x": np.random.default_rng(1).normal(size=(BATCH, SEQ, HIDDEN)).astype(np.float32),
         "mask": np.array([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]], np.int64)}  # the 2nd is padded


def test_a_padding_mask_becomes_mask_index_and_the_outputs_stay_the_same() -> None:
    model = _graph()
    want = _run(model, FEEDS)
    ready, refused = prepare_attention(model)
    assert ready == ["attn"] and refused == {}
    (attn,) = [n for n in model.graph.node if n.op_type == "Attention"]
    inits = {i.name for i in model.graph.initializer}
    assert attn.input[1] in inits and len(attn.input) == 5 and attn.input[3]
    assert not [a for a in attn.attribute if a.name == "qkv_hidden_sizes"]
    assert {"wq", "wk", "wv"}.isdisjoint(inits)  # the folded Concat's parts are gone
    np.testing.assert_allclose(_run(model, FEEDS), want, rtol=1e-5, atol=1e-5)
    # The mask matters: without it the padded item's outputs change.
    unmasked = dict(FEEDS, mask=np.ones((BATCH, SEQ), np.int64))
    assert np.abs(_run(model, unmasked)[1] - want[1]).max() > 1e-2


def test_a_bias_that_is_not_a_padding_mask_is_left_in_float_with_the_reason() -> None:
    model = _graph(bias_reads_x=True)
    ready, refused = prepare_attention(model)
    assert ready == [] and "not a padding mask" in refused["attn"]
    (attn,) = [n for n in model.graph.node if n.op_type == "Attention"]
    assert attn.input[5] == "bias1"  # untouched: the quantizer is told to skip it


def test_the_fused_minilm_candidate_runs_qattention_within_budget(deployed) -> None:
    from tests.conftest import candidate

    fused = candidate(deployed, "int8-dynamic-fused")
    model = onnx.load(fused["model"], load_external_data=False)
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("QAttention") == 6 and "Attention" not in ops
    checks = {c["name"]: c["value"] for c in fused["accuracy"]["checks"]}
    assert checks["mean cosine to FP32"] >= 0.99 and checks["size vs FP32"] <= 0.3
