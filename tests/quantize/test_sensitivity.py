"""Which activation-only nodes a backend can take out of int8 (read from the graph it wrote
when told to exclude them), so that diagnose ranks only changes a point can make, and how the
probe frees the others when the backend would."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from frugalml.quantize.sensitivity import activation_only, kept_in_int8, quantized_nodes


def _graph(add_reads_the_pair: bool) -> onnx.ModelProto:
    """x -> Q -> DQ -> MatMul(W); the residual Add reads x through the same pair (a shared
    pair, as ONNX Runtime writes it) or x itself (the pair taken off the Add)."""
    inits = [numpy_helper.from_array(np.float32(0.05), "s"),
             numpy_helper.from_array(np.uint8(128), "z"),
             numpy_helper.from_array(np.ones((4, 4), np.float32), "W")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"], name="q"),
             helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"], name="dq"),
             helper.make_node("MatMul", ["xd", "W"], ["m"], name="matmul"),
             helper.make_node("Add", ["xd" if add_reads_the_pair else "x", "m"], ["y"],
                              name="residual_add")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [1, 4])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, [1, 4])], inits)
    return helper.make_model(graph)


def test_an_add_whose_pair_the_backend_keeps_is_not_ranked(tmp_path: Path) -> None:
    quantized = _graph(add_reads_the_pair=True)
    nodes = quantized_nodes(quantized)
    assert "residual_add" in nodes
    assert activation_only(quantized, nodes) == ("residual_add",)
    onnx.save(_graph(add_reads_the_pair=True), tmp_path / "ignored.onnx")
    onnx.save(_graph(add_reads_the_pair=False), tmp_path / "honoured.onnx")
    assert kept_in_int8(quantized, tmp_path / "ignored.onnx", ("residual_add",)) == (
        "residual_add",)
    assert kept_in_int8(quantized, tmp_path / "honoured.onnx", ("residual_add",)) == ()


def test_the_probe_frees_a_kept_add_with_the_last_node_sharing_its_pair(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The backend drops a pair no quantized node reads: with the MatMul in float, the kept
    Add reads float too, and the probe puts it back in float with it (not alone)."""
    import frugalml.quantize.sensitivity as module

    probe = module.Probe.__new__(module.Probe)
    probe.q_model, probe.f_model, probe.feeds, probe.ref, probe.output = (
        _graph(add_reads_the_pair=True), None, [], [], "y")
    probe.follow(("residual_add",), ("matmul",))
    assert probe.followers == {"residual_add": frozenset({"matmul"})}
    in_float: list[list[str]] = []
    monkeypatch.setattr(module, "dequantize_layers",
                        lambda q, f, names: in_float.append(names) or q)
    monkeypatch.setattr(module, "_probe", lambda *a: [])
    monkeypatch.setattr(module, "_worst_part", lambda *a: 1.0)
    probe.cosine(("matmul",))
    probe.cosine(("other",))
    assert in_float == [["matmul", "residual_add"], ["other"]]
