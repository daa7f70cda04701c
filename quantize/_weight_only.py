"""Weight-only symmetric INT8 for chosen constant weights: int8 storage, float compute.

Used for layers whose activations must stay float, and for embedding tables, so the file still
shrinks about 4x. Embedding tables are gathered in int8 first and only the gathered rows are
scaled: dequantizing a 30k-row table on every run cost 7 ms of a 26 ms MiniLM inference.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from frugalml.errors import QuantizationError


def _quantize_symmetric(weight: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    reduce_axes = tuple(a for a in range(weight.ndim) if a != axis)
    scale = np.abs(weight).max(axis=reduce_axes) / 127.0
    scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
    shape = [1] * weight.ndim
    shape[axis] = -1
    q = np.clip(np.rint(weight / scale.reshape(shape)), -127, 127).astype(np.int8)
    return q, scale


def weight_only_int8(model: Any, targets: dict[str, tuple[int, int]]) -> tuple[str, ...]:
    """Replace float initializers read by the named nodes with int8 + per-axis DequantizeLinear.

    Args:
        model: an ``onnx.ModelProto`` edited in place (opset >= 13 for per-axis DQ).
        targets: node name -> (input index of the weight, quantization axis).

    Returns:
        Names of the nodes whose weights were converted.

    Raises:
        QuantizationError: the model's opset is too old for per-axis DequantizeLinear.
    """
    import onnx
    from onnx import numpy_helper

    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if targets and opset < 13:
        raise QuantizationError(f"Weight-only INT8 needs opset >= 13; the model has {opset}.")
    inits = {i.name: i for i in model.graph.initializer}
    uses = Counter(name for node in model.graph.node for name in node.input)
    done = []
    new_nodes = []
    for node in model.graph.node:
        if node.name not in targets:
            continue
        index, axis = targets[node.name]
        name = node.input[index]
        init = inits.get(name)
        tied = node.op_type == "Gather" and uses[name] > 1
        if init is None or init.data_type != onnx.TensorProto.FLOAT or (
                uses[name] != 1 and not tied):
            continue  # not a private float constant (or a shared embedding table): leave it
        q, scale = _quantize_symmetric(numpy_helper.to_array(init), axis)
        model.graph.initializer.remove(init)
        if node.op_type == "Gather":
            new_nodes += _int8_gather(model, node, name, q, scale)
            done.append(node.name)
            if not tied:
                continue
            # A tied table (a language model's output head reads it too, transposed): the
            # other readers get it dequantized from the same int8 rows (int8 storage, float
            # compute, per-row scales = per-output-channel scales of the head).
        else:
            model.graph.initializer.append(numpy_helper.from_array(q, name + "_int8"))
        model.graph.initializer.extend([
            numpy_helper.from_array(scale, name + "_scale"),
            numpy_helper.from_array(np.zeros_like(scale, dtype=np.int8), name + "_zero"),
        ])
        new_nodes.append(onnx.helper.make_node(
            "DequantizeLinear", [name + "_int8", name + "_scale", name + "_zero"], [name],
            name=name + "_weight_dq", axis=axis,
        ))
        if not tied:
            done.append(node.name)
    # DQ nodes read only initializers, so putting them first keeps the graph topologically sorted.
    for dq in reversed([n for n in new_nodes if n.op_type == "DequantizeLinear"]):
        model.graph.node.insert(0, dq)
    model.graph.node.extend(n for n in new_nodes if n.op_type != "DequantizeLinear")
    return _toposorted(model, tuple(done))


def int8_embeddings(model: Any, recipe: Any) -> tuple[str, ...]:
    """Int8 embedding tables (row scales), so the file shrinks with the weights around them;
    none when the recipe (:class:`~frugalml.quantize.recipe.Recipe`) keeps them float."""
    if not recipe.quantize_embeddings:
        return ()
    inits = {i.name for i in model.graph.initializer}
    tables = {n.name: (0, 0) for n in model.graph.node if n.op_type == "Gather"
              and n.input[0] in inits and n.name not in recipe.float_nodes}
    return weight_only_int8(model, tables)


def _int8_gather(model: Any, node: Any, name: str, q: np.ndarray, scale: np.ndarray) -> list[Any]:
    """Rewrite ``Gather(table, ids)`` as ``Cast(Gather(table_int8, ids)) * Gather(scale, ids)``."""
    import onnx
    from onnx import numpy_helper

    if any(a.name == "axis" and a.i != 0 for a in node.attribute):
        raise QuantizationError(f"{node.name}: embedding Gather must use axis 0.")
    model.graph.initializer.extend([
        numpy_helper.from_array(q, name + "_int8"),
        numpy_helper.from_array(scale.reshape(-1, 1), name + "_row_scale"),
    ])
    out, ids = node.output[0], node.input[1]
    node.input[0] = name + "_int8"
    node.output[0] = out + "_int8"
    make = onnx.helper.make_node
    return [
        make("Gather", [name + "_row_scale", ids], [out + "_scale"], name=node.name + "_scale"),
        make("Cast", [out + "_int8"], [out + "_float"], name=node.name + "_cast",
             to=onnx.TensorProto.FLOAT),
        make("Mul", [out + "_float", out + "_scale"], [out], name=node.name + "_dequant"),
    ]


def _toposorted(model: Any, done: tuple[str, ...]) -> tuple[str, ...]:
    """Re-sort nodes so appended ones follow their producers (ONNX requires topological order)."""
    nodes = list(model.graph.node)
    ready = {i.name for i in model.graph.input} | {i.name for i in model.graph.initializer}
    ordered: list[Any] = []
    while nodes:
        rest = []
        for n in nodes:
            if all(i == "" or i in ready for i in n.input):
                ordered.append(n)
                ready.update(n.output)
            else:
                rest.append(n)
        if len(rest) == len(nodes):
            raise QuantizationError("Graph has a cycle or an undefined input after quantization.")
        nodes = rest
    del model.graph.node[:]
    model.graph.node.extend(ordered)
    return done
