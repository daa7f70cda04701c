"""Put chosen layers of a QDQ ONNX graph back in float, without quantizing again.

Used by `frugal diagnose` to measure each layer's share of the error in one quick run per
layer: the layer's activation inputs bypass their QuantizeLinear/DequantizeLinear pair and its
weight and bias come back from the FP32 model (matched by node name).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


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
    return model
