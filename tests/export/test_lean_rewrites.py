"""The export's onnxscript optimizer runs without its quadratic SlicesSplit rule (see
export/lean_rewrites.py): the rule is gone inside the block, back after it (error or not),
and the optimizer really reads the lean set (it no longer tries the rule on a graph of Slices)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from frugalml.export.lean_rewrites import QUADRATIC_RULE, lean_rewrites


def _names() -> list[str | None]:
    from onnxscript import rewriter

    return [getattr(r, "name", None) for r in rewriter._DEFAULT_REWRITE_RULES]


def _two_halves() -> onnx.ModelProto:
    """relu(x[:, :4]) and relu(x[:, 4:]) of one (2, 8) tensor: two Slices for the rule to try."""
    ints = {n: numpy_helper.from_array(np.array(v, np.int64), n)
            for n, v in {"s0": [0], "e0": [4], "s1": [4], "e1": [8], "ax": [1]}.items()}
    nodes = [helper.make_node("Slice", ["x", "s0", "e0", "ax"], ["h0"]),
             helper.make_node("Slice", ["x", "s1", "e1", "ax"], ["h1"]),
             helper.make_node("Relu", ["h0"], ["a"]), helper.make_node("Relu", ["h1"], ["b"])]
    graph = helper.make_graph(
        nodes, "halves", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2, 4]) for n in "ab"],
        list(ints.values()))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])


def _spy_on_the_rule(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A list that grows each time onnxscript's optimizer tries SlicesSplit."""
    from onnxscript import rewriter

    (rule,) = [r for r in rewriter._DEFAULT_REWRITE_RULES
               if getattr(r, "name", None) == QUADRATIC_RULE]
    tries: list[int] = []
    original = rule.try_rewrite
    monkeypatch.setattr(rule, "try_rewrite", lambda *a, **k: tries.append(1) or original(*a, **k))
    return tries


def test_the_rule_is_left_out_inside_the_block_and_restored_after() -> None:
    before = _names()
    assert QUADRATIC_RULE in before
    with lean_rewrites():
        inside = _names()
    assert QUADRATIC_RULE not in inside and len(inside) == len(before) - 1
    assert _names() == before
    with pytest.raises(RuntimeError), lean_rewrites():
        raise RuntimeError("an exporter failed")
    assert _names() == before


def test_the_optimizer_reads_the_lean_set(monkeypatch: pytest.MonkeyPatch) -> None:
    from onnxscript import optimizer

    tries = _spy_on_the_rule(monkeypatch)
    optimizer.optimize(_two_halves())
    assert tries  # tried on the Slices of the graph
    tries.clear()
    with lean_rewrites():
        optimizer.optimize(_two_halves())
    assert not tries
