"""A graph is calibrated once per process (quantize/_ranges.py): quantizing it again with
another node kept in float, as the mixed-precision search and `frugal diagnose` do, reuses
ONNX Runtime's ranges, and gives exactly what calibrating again gives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from frugalml.calibration import from_items, make_set
from frugalml.quantize import _ranges
from frugalml.quantize.api import quantize
from frugalml.quantize.recipe import get_recipe


def _mlp(path: Path) -> Path:
    """x[b, 16] -> MatMul -> Relu -> MatMul -> Relu -> MatMul -> y[b, 4]."""
    rng = np.random.default_rng(0)
    sizes, nodes, weights, prev = [(16, 32), (32, 32), (32, 4)], [], [], "x"
    for i, (k, n) in enumerate(sizes):
        weights.append(numpy_helper.from_array(
            rng.normal(0, 1 / np.sqrt(k), (k, n)).astype(np.float32), f"w{i}"))
        out = "y" if i == len(sizes) - 1 else f"h{i}"
        nodes.append(helper.make_node("MatMul", [prev, f"w{i}"], [f"m{i}" if out != "y" else out],
                                      name=f"mm{i}"))
        if out != "y":
            nodes.append(helper.make_node("Relu", [f"m{i}"], [out], name=f"relu{i}"))
        prev = out
    graph = helper.make_graph(
        nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", 4])], weights)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def _scales(path: Path) -> dict[str, float]:
    model = onnx.load(str(path))
    values = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    return {n.input[0]: float(values[n.input[1]]) for n in model.graph.node
            if n.op_type == "QuantizeLinear" and n.input[1] in values
            and values[n.input[1]].size == 1}


def test_a_second_quantization_reuses_the_ranges_and_matches_a_fresh_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(1)
    data = make_set(from_items([{"x": rng.normal(size=16).astype(np.float32)}
                                for _ in range(96)]), calibration_size=48)
    model = _mlp(tmp_path / "mlp.onnx")

    def run(name: str, ignored: tuple[str, ...]) -> object:
        recipe = get_recipe("int8", dynamic_activations=False, ignored_nodes=ignored)
        return quantize(model, data, tmp_path / name, recipe=recipe, target="x86-avx512",
                        eval_items=16, allow_over_budget=True)

    calibrations = []
    real = _ranges.remember
    monkeypatch.setattr("frugalml.quantize.onnxruntime.remember",
                        lambda path, items: (calibrations.append(items), real(path, items)))
    first = run("first", ())
    second = run("second", ("mm1",))  # another node in float: the same ranges serve
    assert calibrations == [48]  # the second quantization did not calibrate
    assert first.calibration_items_used == second.calibration_items_used == 48
    assert "mm1" in second.float_layers and "mm1" not in first.float_layers
    monkeypatch.setattr(_ranges, "_ITEMS", {})  # forget: calibrate again from the data
    monkeypatch.setattr(_ranges, "_FOLDER", [tmp_path / "fresh-ranges"])
    (tmp_path / "fresh-ranges").mkdir()
    fresh = run("fresh", ("mm1",))
    assert calibrations == [48, 48]
    assert _scales(second.path) == _scales(fresh.path) and _scales(fresh.path)
