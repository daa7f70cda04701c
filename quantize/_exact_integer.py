"""A scoring copy of a dynamic-INT8 model whose integer products are computed exactly.

ONNX Runtime's ``MatMulInteger`` (u8 activations x s8 weights) runs on x86 AVX2 without VNNI
through 16-bit pair sums that saturate with full 8-bit weights, so a model meant for a VNNI or
ARM CPU, scored on such a host, loses accuracy the target never loses (all-MiniLM-L6-v2
dynamic INT8 for x86-avx512: probe drop 2.0 points scored by an AMD EPYC family 25 model 1,
AVX2 only; within 1.0 on a VNNI host). Unfusing the graph does not help: the op itself is
the host's kernel. In the copy each ``MatMulInteger`` with constant weights becomes a float
``MatMul`` of the zero-point-shifted integers, cast back to int32: the target's integer
result, exact while the partial sums stay below 2**24 and within float32 rounding beyond.
Only scoring reads the copy; the shipped model is unchanged. A copy with no integer kernel
left runs with all graph optimizations, as the target runs its float ops: unfused, MiniLM's
float LayerNorm, GELU and bias paths moved the probe by 1 point (1.33 vs 0.33 with the fused
float ops; the VNNI host's own kernels: within 1.0).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def has_integer_matmuls(path: Path) -> bool:
    """True when the ONNX file at ``path`` holds a ``MatMulInteger`` node."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return any(n.op_type == "MatMulInteger" for n in graph.node)


# Ops whose ONNX Runtime kernels multiply integers with this host's instructions, and
# QuantizeLinear, from whose Q/DQ pairs graph optimization makes such kernels.
_INTEGER_KERNELS = frozenset({
    "MatMulInteger", "ConvInteger", "QLinearConv", "QLinearMatMul", "QGemm", "QAttention",
    "MatMulIntegerToFloat", "DynamicQuantizeMatMul", "QuantizeLinear"})


def integer_kernels_left(path: Path) -> bool:
    """True when the ONNX file at ``path`` still holds an op that this host's integer kernels
    would compute (see ``_INTEGER_KERNELS``): the copy then runs unfused."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return any(n.op_type in _INTEGER_KERNELS for n in graph.node)


def exact_integer_copy(path: Path, dest: Path) -> int:
    """Write the scoring copy of ``path`` (see the module docstring) to ``dest``; the number
    of ``MatMulInteger`` nodes rewritten (those with non-constant weights are left)."""
    import onnx

    model = onnx.load(str(path))
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    done = 0
    for node in list(graph.node):
        if node.op_type != "MatMulInteger" or node.input[1] not in inits:
            continue
        at = list(graph.node).index(node)
        graph.node.remove(node)
        for offset, (made, initializers) in enumerate(_float_matmul(node, inits)):
            graph.node.insert(at + offset, made)
            graph.initializer.extend(initializers)
        done += 1
    onnx.save(model, str(dest))
    return done


def _float_matmul(node: Any, inits: dict[str, Any]) -> list[tuple[Any, list[Any]]]:
    """``Cast(MatMul(float(A) - a_zero, float(B - b_zero)), int32)`` for one node."""
    from onnx import TensorProto, helper, numpy_helper

    def const(i: int) -> np.ndarray | None:
        name = node.input[i] if len(node.input) > i else ""
        return numpy_helper.to_array(inits[name]).astype(np.float32) if name else None

    weights = const(1)
    b_zero = const(3)
    if b_zero is not None:
        weights = weights - (b_zero if b_zero.ndim == 0 else b_zero.reshape(1, -1))
    stem = node.name or node.output[0]
    w = numpy_helper.from_array(weights.astype(np.float32), f"{stem}_exact_weights")
    made = [(helper.make_node("Cast", [node.input[0]], [f"{stem}_a"], to=TensorProto.FLOAT), [])]
    a = f"{stem}_a"
    if len(node.input) > 2 and node.input[2]:
        made += [(helper.make_node("Cast", [node.input[2]], [f"{stem}_a_zero"],
                                   to=TensorProto.FLOAT), []),
                 (helper.make_node("Sub", [a, f"{stem}_a_zero"], [f"{stem}_a_shifted"]), [])]
        a = f"{stem}_a_shifted"
    made += [(helper.make_node("MatMul", [a, w.name], [f"{stem}_exact"]), [w]),
             (helper.make_node("Cast", [f"{stem}_exact"], list(node.output),
                               to=TensorProto.INT32, name=f"{stem}_exact_cast"), [])]
    return made
