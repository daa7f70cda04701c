"""The ONNX nodes that run GGUF blocks as they are (see :mod:`frugalml.quantize.gguf_grid`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from frugalml.quantize._gguf_blocks import Blocks
from frugalml.quantize._graph import drop_unused

MS = "com.microsoft"


def rewrite(graph: Any, tensors: list[Any], match: Callable[..., Any]) -> dict[str, Any]:
    """Replace every MatMul and Gather whose constant weight is exactly a GGUF tensor by the
    nodes that compute with its blocks; in place. What was done, and what was not and why."""
    from onnx import numpy_helper

    inits = {i.name: i for i in graph.initializer}
    done: dict[str, str] = {}
    left: dict[str, str] = {}
    sums: dict[str, str] = {}  # input -> its block sums, shared by the offset layers reading it
    # (GGUF tensor, row order) -> the initializer holding its 8-bit codes as [rows, blocks,
    # block]: a tied embedding and output layer read one table (MatMulNBits and
    # GatherBlockQuantized take the same layout)
    codes: dict[tuple[str, bytes], str] = {}
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
            left[node.name] = "its weight is no tensor of the file in a block type kept"
            continue
        (name, kind, blocks, _), order = found
        blocks = blocks.take(order)
        if node.op_type == "Gather" and (blocks.bits != 8 or blocks.m is not None):
            left[node.name] = (f"an embedding in {kind}: only tables of 8-bit codes without "
                               "offsets (Q8_0, Q5_0, Q6_K) are gathered as blocks")
            continue
        new = [] if node.op_type == "Gather" or blocks.m is None or node.input[0] in sums else (
            _remember(sums, node.input[0],
                      block_sums(node.input[0], rows.shape[1], blocks.block)))
        key = (name, np.asarray(order).tobytes())
        new += (_gather(node, blocks, codes, key) if node.op_type == "Gather" else _matmul(
            node, blocks, rows.shape, sums.get(node.input[0], ""), codes, key))
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


def _codes(b: Blocks, stem: str, codes: dict[tuple[str, bytes], str],
           key: tuple[str, bytes]) -> tuple[str, list[Any]]:
    """The initializer of ``b``'s codes as [rows, blocks, bytes per block]: the one already
    written for the same tensor and row order (8-bit codes), else a new one."""
    if b.bits == 8 and key in codes:
        return codes[key], []
    q = b.q
    packed = q if b.bits == 8 else (q[..., 0::2] | (q[..., 1::2] << 4)).astype(np.uint8)
    made = _init(packed, f"{stem}_blocks")
    if b.bits == 8:
        codes[key] = made.name
    return made.name, [made]


def _matmul(node: Any, b: Blocks, shape: tuple[int, int], sums: str,
            codes: dict[tuple[str, bytes], str], key: tuple[str, bytes]
            ) -> list[tuple[Any, list[Any]]]:
    """MatMulNBits over the blocks; for an offset type also the offsets' share, exactly
    (``sums``: the input's block sums, see :func:`block_sums`)."""
    from onnx import helper

    n, k = shape
    stem = node.name
    table, inits = _codes(b, stem, codes, key)
    inits = [*inits, _init(b.d.reshape(-1), f"{stem}_scales")]
    if b.zero != 2 ** (b.bits - 1):  # the op's default zero point is not stored (Q4, Q8_0)
        if b.bits != 8:
            raise ValueError(f"{b.kind}: a 4-bit zero point other than 8 is not written here")
        inits.append(_init(np.full(n * (k // b.block), b.zero, np.uint8), f"{stem}_zero"))
    out = node.output[0] if b.m is None else f"{stem}_codes"
    matmul = helper.make_node("MatMulNBits", [node.input[0], table, f"{stem}_scales",
                                              *([f"{stem}_zero"] if b.zero != 2 ** (b.bits - 1)
                                                else [])], [out],
                              domain=MS, name=f"{stem}_gguf", K=k, N=n, bits=b.bits,
                              block_size=b.block, accuracy_level=4)
    nodes = [(matmul, inits)]
    if b.m is not None:  # + each block's input sum times (zero d + m): d q + m = d (q - zero) + ..
        offsets = (b.zero * b.d + b.m).T.astype(np.float32)  # [K / block, N]
        nodes += [
            (helper.make_node("MatMul", [sums, f"{stem}_offsets"], [f"{stem}_offset"]),
             [_init(offsets, f"{stem}_offsets")]),
            (helper.make_node("Add", [out, f"{stem}_offset"], [node.output[0]],
                              name=f"{stem}_gguf_offset"), [])]
    return nodes


def block_sums(x: str, k: int, block: int) -> tuple[str, list[tuple[Any, list[Any]]]]:
    """Nodes that sum ``x`` [batch, sequence, K] over each block: [batch, sequence,
    K / block], computed once for every offset layer reading ``x`` (a decoder's activations
    are 3-D; another rank fails when the graph is first run and scored, never silently)."""
    from onnx import helper

    shape = _init(np.array([0, 0, k // block, block], np.int64), f"{x}_blocks_shape")
    axis = _init(np.array([-1], np.int64), f"{x}_blocks_axis")
    name = f"{x}_block_sums"
    return name, [
        (helper.make_node("Reshape", [x, shape.name], [f"{x}_by_block"]), [shape]),
        (helper.make_node("ReduceSum", [f"{x}_by_block", axis.name], [name], keepdims=0),
         [axis])]


def _gather(node: Any, b: Blocks, codes: dict[tuple[str, bytes], str],
            key: tuple[str, bytes]) -> list[tuple[Any, list[Any]]]:
    """GatherBlockQuantized over a table of 8-bit codes (Q8_0, Q5_0, Q6_K) with its zero
    point, the codes as [rows, blocks, block] (the layout MatMulNBits reads, so a tied output
    layer shares them), each gathered row reshaped back to its width."""
    from onnx import helper

    rows, blocks = b.d.shape
    stem = node.name
    table, inits = _codes(b, stem, codes, key)
    inits += [_init(b.d[..., None], f"{stem}_scales"),
              _init(np.full((rows, blocks, 1), b.zero, np.uint8), f"{stem}_zero"),
              _init(np.array([blocks * b.block], np.int64), f"{stem}_width")]
    gather = helper.make_node(
        "GatherBlockQuantized", [table, node.input[1], f"{stem}_scales", f"{stem}_zero"],
        [f"{stem}_by_block"], domain=MS, name=f"{stem}_gguf", bits=8, block_size=b.block,
        gather_axis=0, quantize_axis=2)
    return [(gather, inits),
            (helper.make_node("Shape", [node.input[1]], [f"{stem}_ids_shape"]), []),
            (helper.make_node("Concat", [f"{stem}_ids_shape", f"{stem}_width"],
                              [f"{stem}_shape"], axis=0), []),
            (helper.make_node("Reshape", [f"{stem}_by_block", f"{stem}_shape"],
                              list(node.output)), [])]
