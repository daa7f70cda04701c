"""The ONNX nodes that run GGUF blocks as they are (see :mod:`frugalml.quantize.gguf_grid`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

BLOCK = 32
MS = "com.microsoft"


def rewrite(graph: Any, tensors: list[Any], match: Callable[..., Any]) -> dict[str, Any]:
    """Replace every MatMul and Gather whose constant weight is exactly a GGUF tensor by the
    nodes that compute with its blocks; in place. What was done, and what was not and why."""
    from onnx import numpy_helper

    from frugalml.quantize._graph import drop_unused

    inits = {i.name: i for i in graph.initializer}
    done: dict[str, str] = {}
    left: dict[str, str] = {}
    sums: dict[str, str] = {}  # input -> its block sums, shared by the Q4_1 layers reading it
    for node in list(graph.node):
        if node.op_type not in ("MatMul", "Gather"):
            continue
        weight = node.input[1] if node.op_type == "MatMul" else node.input[0]
        if weight not in inits:
            continue
        value = numpy_helper.to_array(inits[weight])
        if value.ndim != 2 or value.dtype != np.float32:
            continue
        rows = value.T if node.op_type == "MatMul" else value
        found = match(rows, tensors)  # a tied table serves its Gather and its MatMul
        if found is None:
            left[node.name] = "its weight is no Q4_0/Q4_1/Q8_0 tensor of the file"
            continue
        (name, kind, blocks, _), order = found
        blocks = {k: v[order] for k, v in blocks.items()}
        if node.op_type == "Gather" and kind != "Q8_0":
            left[node.name] = f"an embedding in {kind}: only Q8_0 tables are gathered as blocks"
            continue
        new = [] if node.op_type == "Gather" or kind != "Q4_1" or node.input[0] in sums else (
            _remember(sums, node.input[0], block_sums(node.input[0], rows.shape[1])))
        new += (_gather(node, blocks) if node.op_type == "Gather" else _matmul(
            node, kind, blocks, rows.shape, sums.get(node.input[0], "")))
        index = list(graph.node).index(node)
        graph.node.remove(node)
        for offset, (made, initializers) in enumerate(new):
            graph.node.insert(index + offset, made)
            graph.initializer.extend(initializers)
        done[node.name] = f"{name} {kind}"
    drop_unused(graph)
    return {"transcoded": done, "left_as_exported": left}


def _remember(sums: dict[str, str], x: str, made: tuple[str, list[Any]]) -> list[Any]:
    sums[x] = made[0]
    return made[1]


def _init(value: np.ndarray, name: str) -> Any:
    from onnx import numpy_helper

    return numpy_helper.from_array(np.ascontiguousarray(value), name)


def _matmul(node: Any, kind: str, b: dict[str, np.ndarray], shape: tuple[int, int],
            sums: str) -> list[tuple[Any, list[Any]]]:
    """MatMulNBits over the blocks; for Q4_1 also the offsets' share, exactly (``sums``: the
    input's block sums, see :func:`block_sums`)."""
    from onnx import helper

    n, k = shape
    bits = 8 if kind == "Q8_0" else 4
    q = b["q"].astype(np.uint8)
    packed = q if bits == 8 else (q[..., 0::2] | (q[..., 1::2] << 4)).astype(np.uint8)
    stem = node.name
    # no zero points: the op's default, 2 ** (bits - 1), is Q4's 8 and Q8_0's 128 (codes
    # stored unsigned), and not reading them saves 1/64 byte per weight each token
    inits = [_init(packed.reshape(n, k // BLOCK, -1), f"{stem}_blocks"),
             _init(b["d"].reshape(-1), f"{stem}_scales")]
    out = node.output[0] if kind != "Q4_1" else f"{stem}_codes"
    matmul = helper.make_node("MatMulNBits", [node.input[0], *(i.name for i in inits)], [out],
                              domain=MS, name=f"{stem}_gguf", K=k, N=n, bits=bits,
                              block_size=BLOCK, accuracy_level=4)
    nodes = [(matmul, inits)]
    if kind == "Q4_1":  # + each block's input sum times (8 d + m): d q + m = d (q - 8) + 8 d + m
        offsets = (8.0 * b["d"] + b["m"]).T.astype(np.float32)  # [K / 32, N]
        nodes += [
            (helper.make_node("MatMul", [sums, f"{stem}_offsets"], [f"{stem}_offset"]),
             [_init(offsets, f"{stem}_offsets")]),
            (helper.make_node("Add", [out, f"{stem}_offset"], [node.output[0]],
                              name=f"{stem}_gguf_offset"), [])]
    return nodes


def block_sums(x: str, k: int) -> tuple[str, list[tuple[Any, list[Any]]]]:
    """Nodes that sum ``x`` [batch, sequence, K] over each block of 32: [batch, sequence,
    K / 32], computed once for every Q4_1 layer reading ``x`` (a decoder's activations are
    3-D; another rank fails when the graph is first run and scored, never silently)."""
    from onnx import helper

    shape = _init(np.array([0, 0, k // BLOCK, BLOCK], np.int64), f"{x}_blocks_shape")
    axis = _init(np.array([-1], np.int64), f"{x}_blocks_axis")
    name = f"{x}_block_sums"
    return name, [
        (helper.make_node("Reshape", [x, shape.name], [f"{x}_by_block"]), [shape]),
        (helper.make_node("ReduceSum", [f"{x}_by_block", axis.name], [name], keepdims=0),
         [axis])]


def _gather(node: Any, b: dict[str, np.ndarray]) -> list[tuple[Any, list[Any]]]:
    """GatherBlockQuantized over a Q8_0 table's blocks (8 bits, zero point 128)."""
    from onnx import helper

    rows, blocks = b["d"].shape
    inits = [_init(b["q"].astype(np.uint8).reshape(rows, blocks * BLOCK), f"{node.name}_blocks"),
             _init(b["d"], f"{node.name}_scales"),
             _init(np.full((rows, blocks), 128, np.uint8), f"{node.name}_zero")]
    gather = helper.make_node(
        "GatherBlockQuantized", [inits[0].name, node.input[1], inits[1].name, inits[2].name],
        list(node.output), domain=MS, name=f"{node.name}_gguf", bits=8, block_size=BLOCK,
        gather_axis=0, quantize_axis=1)
    return [(gather, inits)]
