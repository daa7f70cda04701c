"""Put chosen nodes of a QDQ ONNX graph back in float, without quantizing again.

Used by `frugal diagnose` to measure each node's share of the error in one quick run per
node: the node's activation inputs bypass their QuantizeLinear/DequantizeLinear pair and its
weight and bias come back from the FP32 model (matched by node name). An activation-only node
(Concat, Add, Resize ...) also loses the pair on its output: the scale it shared with its
inputs is the error being measured.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from frugalml.quantize._graph import LINEAR_OPS


def dequantize_layers(quantized: Any, fp32: Any, names: Iterable[str]) -> Any:
    """A copy of ``quantized`` (``onnx.ModelProto``) with the named layers computing in float.

    A weight whose FP32 original cannot be found by node name keeps its int8 values (the
    layer's activations still go back to float).
    """
    import onnx

    model = onnx.ModelProto()
    model.CopyFrom(quantized)
    wanted = set(names)
    producer = {out: node for node in model.graph.node for out in node.output}
    have = {i.name for i in model.graph.initializer}
    fp32_nodes = {n.name: n for n in fp32.graph.node}
    fp32_inits = {i.name: i for i in fp32.graph.initializer}
    for node in model.graph.node:
        if node.name not in wanted:
            continue
        original = fp32_nodes.get(node.name)
        for i, name in enumerate(node.input):
            dq = producer.get(name)
            if dq is None or dq.op_type != "DequantizeLinear":
                continue
            source = producer.get(dq.input[0])
            if source is not None and source.op_type == "QuantizeLinear":
                node.input[i] = source.input[0]
                continue
            float_name = original.input[i] if original is not None and i < len(
                original.input) else None
            if float_name in fp32_inits:
                # The quantized graph may reuse the name for the DequantizeLinear output.
                copy_name = float_name + "_fp32"
                if copy_name not in have:
                    tensor = onnx.TensorProto()
                    tensor.CopyFrom(fp32_inits[float_name])
                    tensor.name = copy_name
                    model.graph.initializer.append(tensor)
                    have.add(copy_name)
                node.input[i] = copy_name
        if node.op_type not in LINEAR_OPS:
            _bypass_output_pairs(model, node)
    return model


def _bypass_output_pairs(model: Any, node: Any) -> None:
    """Remove the QuantizeLinear -> DequantizeLinear pairs reading ``node``'s outputs; their
    readers read the float output (renamed to the graph output's name if the pair made one)."""
    graph_outputs = {o.name for o in model.graph.output}
    for tensor in list(node.output):
        quants = [n for n in model.graph.node
                  if n.op_type == "QuantizeLinear" and n.input[0] == tensor]
        for q in quants:
            deqs = [n for n in model.graph.node
                    if n.op_type == "DequantizeLinear" and n.input[0] == q.output[0]]
            if len(deqs) != sum(1 for n in model.graph.node if q.output[0] in n.input):
                continue  # the integer tensor has other readers (a fused integer op)
            for dq in deqs:
                new = dq.output[0] if dq.output[0] in graph_outputs else tensor
                old = tensor if new != tensor else dq.output[0]
                model.graph.node.remove(dq)
                _rename(model, old, new)
                tensor = new
            model.graph.node.remove(q)


def _rename(model: Any, old: str, new: str) -> None:
    """Every use and production of tensor ``old`` becomes ``new``."""
    if old == new:
        return
    for n in model.graph.node:
        for seq in (n.input, n.output):
            for i, name in enumerate(seq):
                if name == old:
                    seq[i] = new
