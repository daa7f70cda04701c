"""GGUF offsets and table scales stored at the file's own width, widened when ONNX Runtime
loads them.

``MatMulNBits`` and ``GatherBlockQuantized`` take their scales in the activations' type
(float32 here), and a Q4_1 layer's offset table (``zero * d + m``, see :mod:`._gguf_nodes`)
was float32 too: 0.75 bytes per weight against the file's 0.625 (float16 ``d`` and ``m``), and
SmolLM2's Q4_1 bundle was 1.19x its file.

Here an offset table is stored as its float16 ``m`` and rebuilt as ``zero * d + m`` by ``Mul``
and ``Add`` from the layer's own float32 scales, only where that rebuilds every value exactly
as the table had it (checked here, value by value); an embedding table's scales that are all
exactly float16 are stored so, behind a ``Cast``. All of it is constant: ONNX Runtime's
constant folding (every optimisation level but ``DISABLE_ALL``, which computes it per call)
turns it back into the same float32 tables when the session loads, so the kernels run on the
same numbers (SmolLM2's logits and cache identical, decode step time unchanged).

``MatMulNBits``'s own scales stay float32 initializers: fed by a ``Cast``, the op (ONNX
Runtime 1.24, accuracy level 4) returned zeros with graph optimisations off, as it needs them
constant when the session is built.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from frugalml.quantize._graph import drop_unused
from frugalml.quantize._merge import offset_of

MS = "com.microsoft"


def store_halves(graph: Any) -> dict[str, int]:
    """Rewrite, in place, the offset tables and embedding scales that are exactly float16
    (see the module docstring); how many of each, and the bytes saved."""
    from onnx import numpy_helper

    inits = {i.name: i for i in graph.initializer}
    done = {"scales": 0, "offsets": 0, "bytes_saved": 0}
    constant: list[Any] = []  # nodes computing the tables, placed first: they read only constants
    for node in list(graph.node):
        if node.domain != MS or node.op_type not in ("MatMulNBits", "GatherBlockQuantized") \
                or node.input[2] not in inits:
            continue
        scales = numpy_helper.to_array(inits[node.input[2]])
        if scales.dtype != np.float32:
            continue
        if node.op_type == "GatherBlockQuantized" and _exact_half(scales):
            half = numpy_helper.from_array(scales.astype(np.float16), f"{node.input[2]}_f16")
            graph.initializer.remove(inits.pop(node.input[2]))
            graph.initializer.append(half)
            constant.append(_cast(half.name, node.input[2]))
            done["scales"] += 1
            done["bytes_saved"] += scales.nbytes // 2
        offset = offset_of(graph, node, inits) if node.op_type == "MatMulNBits" else None
        made = None if offset is None else _offsets(node, scales, offset[1].input[1], inits)
        if made is not None:
            constant += made[0]
            graph.initializer.extend(made[1])
            graph.initializer.remove(inits.pop(offset[1].input[1]))
            done["offsets"] += 1
            done["bytes_saved"] += scales.nbytes // 2
    for index, made in enumerate(constant):
        graph.node.insert(index, made)
    drop_unused(graph)
    return done


def _exact_half(values: np.ndarray) -> bool:
    """Every value survives a round trip through float16 (none is NaN)."""
    return bool(np.array_equal(values.astype(np.float16).astype(np.float32), values))


def _cast(source: str, out: str) -> Any:
    from onnx import TensorProto, helper

    return helper.make_node("Cast", [source], [out], to=TensorProto.FLOAT, name=f"{out}_widen")


def _zero_point(node: Any, inits: dict[str, Any]) -> float | None:
    """The one zero point every block of a MatMulNBits uses (the op's default 2^(bits-1) when
    none is given); None when they differ or are packed 4-bit."""
    from onnx import helper, numpy_helper

    bits = next(helper.get_attribute_value(a) for a in node.attribute if a.name == "bits")
    if len(node.input) < 4 or not node.input[3]:
        return float(2 ** (bits - 1))
    if bits != 8 or node.input[3] not in inits:
        return None
    zeros = np.unique(numpy_helper.to_array(inits[node.input[3]]))
    return float(zeros[0]) if zeros.size == 1 else None


def _offsets(node: Any, scales: np.ndarray, table: str, inits: dict[str, Any]
             ) -> tuple[list[Any], list[Any]] | None:
    """Nodes rebuilding the offset table ``table`` ([blocks, N] = (zero d + m) transposed)
    from the scales and a float16 ``m``, and their initializers; None unless the rebuild is
    exact."""
    from onnx import helper, numpy_helper

    if table not in inits:
        return None
    offsets = numpy_helper.to_array(inits[table])
    zero = _zero_point(node, inits)
    if zero is None or offsets.dtype != np.float32 or scales.size != offsets.size:
        return None
    d = scales.reshape(offsets.shape[1], offsets.shape[0])  # [N, blocks], as MatMulNBits reads
    m = (offsets.T - np.float32(zero) * d).astype(np.float16)
    if not np.array_equal(np.float32(zero) * d + m.astype(np.float32), offsets.T):
        return None
    stem = node.input[2]
    made = numpy_helper.from_array(m, f"{table}_m_f16")
    shape = numpy_helper.from_array(np.array(d.shape, np.int64), f"{table}_d_shape")
    zero_value = numpy_helper.from_array(np.array(zero, np.float32), f"{table}_zero")
    nodes = [
        helper.make_node("Reshape", [stem, shape.name], [f"{table}_d"], name=f"{table}_d"),
        helper.make_node("Mul", [f"{table}_d", zero_value.name], [f"{table}_zd"],
                         name=f"{table}_zd"),
        _cast(made.name, f"{table}_m"),
        helper.make_node("Add", [f"{table}_zd", f"{table}_m"], [f"{table}_t"],
                         name=f"{table}_t"),
        helper.make_node("Transpose", [f"{table}_t"], [table], perm=[1, 0],
                         name=f"{table}_rebuilt")]
    return nodes, [made, shape, zero_value]
