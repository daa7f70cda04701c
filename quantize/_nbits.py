"""Blockwise 4-bit ``DequantizeLinear`` + ``MatMul`` pairs rewritten as ONNX Runtime's
``MatMulNBits`` with int8 activation kernels (accuracy level 4): the same weights, bit for bit.

NNCF's ONNX weight compression writes opset-21 blockwise ``DequantizeLinear`` nodes (int4
weights, per-block scales) in front of float MatMuls. ONNX Runtime 1.32's CPU graph optimizer
fuses such pairs itself at session load, at the accuracy level of a session option (default 4),
and a runtime without that pass dequantizes the weights on every call; rewritten here, the
artifact itself says how it runs (as the onnxruntime backend's W4A8 does, see
:mod:`.onnxruntime`), whatever the session options.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from frugalml.quantize._graph import drop_unused

MS = "com.microsoft"
_INT4, _UINT4 = 22, 21  # onnx.TensorProto.INT4 / UINT4


def _nibbles(values: np.ndarray) -> np.ndarray:
    """Pack unsigned 4-bit values along the last axis, two per byte, low nibble first (an odd
    count gets a zero high nibble last)."""
    if values.shape[-1] % 2:
        values = np.concatenate([values, np.zeros((*values.shape[:-1], 1), values.dtype)], -1)
    return (values[..., 0::2] | (values[..., 1::2] << 4)).astype(np.uint8)


def _blockwise(dq: Any, inits: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, Any, int] | None:
    """(weight [K, N] as unsigned 4-bit, scales [K / g, N], zero points or None, g) of a
    blockwise 4-bit DequantizeLinear over initializers along the reduction axis; else None."""
    from onnx import helper, numpy_helper

    attrs = {a.name: helper.get_attribute_value(a) for a in dq.attribute}
    block = attrs.get("block_size", 0)
    if (dq.op_type != "DequantizeLinear" or block < 16 or block & (block - 1)
            or attrs.get("axis", 1) != 0 or any(i and i not in inits for i in dq.input)):
        return None
    weight = inits[dq.input[0]]
    if weight.data_type not in (_INT4, _UINT4) or len(weight.dims) != 2:
        return None
    shift = 8 if weight.data_type == _INT4 else 0  # signed codes -> unsigned, zero point + 8
    codes = numpy_helper.to_array(weight).astype(np.int16) + shift
    scales = numpy_helper.to_array(inits[dq.input[1]]).astype(np.float32)
    if codes.shape[0] % block or scales.shape != (codes.shape[0] // block, codes.shape[1]):
        return None
    zero = None
    if len(dq.input) > 2 and dq.input[2]:
        zero = (numpy_helper.to_array(inits[dq.input[2]]).astype(np.int16) + shift)
    elif shift == 0:
        zero = np.zeros_like(scales, dtype=np.int16)  # UINT4 without zero points: zero is 0
    return codes.astype(np.uint8), scales, zero, block


def blockwise_to_matmulnbits(model: Any) -> tuple[str, ...]:
    """Rewrite every MatMul whose weight is a blockwise 4-bit DequantizeLinear over constants
    as one ``MatMulNBits`` node (accuracy level 4), in place; the names of the MatMuls done.

    A DequantizeLinear that other nodes also read is left as it is (nothing is duplicated).
    """
    from onnx import helper, numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    producer = {out: node for node in model.graph.node for out in node.output}
    readers = Counter(name for node in model.graph.node for name in node.input)
    done = []
    for index, node in enumerate(model.graph.node):
        dq = producer.get(node.input[1]) if node.op_type == "MatMul" else None
        found = _blockwise(dq, inits) if dq is not None and readers[node.input[1]] == 1 else None
        if found is None:
            continue
        codes, scales, zero, block = found
        k, n = codes.shape
        stem = node.name or node.output[0]
        made = [numpy_helper.from_array(_nibbles(codes.T.reshape(n, k // block, block)),
                                        f"{stem}_q4"),
                numpy_helper.from_array(np.ascontiguousarray(scales.T).reshape(-1),
                                        f"{stem}_q4_scales")]
        if zero is not None:
            made.append(numpy_helper.from_array(
                _nibbles(zero.T.astype(np.uint8)).reshape(-1), f"{stem}_q4_zero"))
        model.graph.initializer.extend(made)
        model.graph.node[index].CopyFrom(helper.make_node(
            "MatMulNBits", [node.input[0], *(i.name for i in made)], list(node.output),
            domain=MS, name=f"{stem}_nbits", K=k, N=n, bits=4, block_size=block,
            accuracy_level=4))
        done.append(stem)
    drop_unused(model.graph)
    if done and not any(o.domain == MS for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid(MS, 1))
    return tuple(done)
