"""Read a quantized ONNX graph: which layers compute in int8, which keep int8 or int4 weights
only, and which stayed float. Works on any QDQ graph, whoever wrote it (ONNX Runtime, NNCF)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from frugalml.errors import QuantizationError

# Operators whose cost is the model's cost: the ones worth quantizing and reporting.
LINEAR_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")
_INT4 = (21, 22)  # onnx.TensorProto.UINT4, INT4
# What ONNX Runtime's dynamic quantization writes for a MatMul (fused or not) or an LSTM.
DYNAMIC_INT8_OPS = ("MatMulInteger", "DynamicQuantizeMatMul", "ConvInteger", "DynamicQuantizeLSTM")
# Recurrent cells: reported as float layers where no backend quantized them (a GRU in ONNX
# Runtime), never quantized through Q/DQ.
RECURRENT_OPS = ("GRU", "LSTM", "RNN")


def summarize(model: Any) -> dict[str, tuple[str, ...]]:
    """Sort the linear layers of an ``onnx.ModelProto`` by how they compute.

    Returns:
        ``int8_activation_layers`` (an input arrives through QuantizeLinear -> DequantizeLinear),
        ``weight_only_layers`` (only the weight is dequantized from int8), ``int4_weight_layers``
        (MatMulNBits, or a 4-bit weight DequantizeLinear), ``float_layers`` (neither).
    """
    producer = {out: node for node in model.graph.node for out in node.output}
    inits = {i.name: i for i in model.graph.initializer}
    kinds: dict[str, list[str]] = {"int8_activation_layers": [], "weight_only_layers": [],
                                   "int4_weight_layers": [], "float_layers": []}
    for node in model.graph.node:
        if node.op_type == "MatMulNBits":
            kinds["int4_weight_layers"].append(node.name)
            continue
        if node.op_type in DYNAMIC_INT8_OPS:  # activations quantized per call, weights int8
            kinds["int8_activation_layers"].append(node.name)
            continue
        if node.op_type in RECURRENT_OPS:
            if len(node.input) > 1 and node.input[1] in inits:
                kinds["float_layers"].append(node.name)
            continue
        if node.op_type not in LINEAR_OPS:
            continue
        sources = [producer.get(name) for name in node.input]
        dq = [n for n in sources if n is not None and n.op_type == "DequantizeLinear"]
        activation = any(producer.get(d.input[0]) is not None
                         and producer[d.input[0]].op_type == "QuantizeLinear" for d in dq)
        weights = [inits[d.input[0]] for d in dq if d.input[0] in inits]
        if any(w.data_type in _INT4 for w in weights):
            kinds["int4_weight_layers"].append(node.name)
        elif activation:
            kinds["int8_activation_layers"].append(node.name)
        elif weights:
            kinds["weight_only_layers"].append(node.name)
        elif len(node.input) > 1 and node.input[1] in inits:
            kinds["float_layers"].append(node.name)  # (activation x activation is no layer)
    return {k: tuple(v) for k, v in kinds.items()}


def linear_layers(model: Any) -> tuple[str, ...]:
    """Names of the float model's linear layers with a constant weight (the quantizable ones)."""
    inits = {i.name for i in model.graph.initializer}
    return tuple(n.name for n in model.graph.node
                 if n.op_type in LINEAR_OPS and len(n.input) > 1 and n.input[1] in inits)


def constants_as_initializers(model: Any) -> int:
    """Move ``Constant`` nodes' tensors into initializers, in place; returns how many moved.

    Exporters such as paddle2onnx (PP-OCR) write every weight as a Constant node, which both
    quantizers read as an activation: without this they found "nothing to quantize".
    """
    from onnx import numpy_helper

    moved = []
    for node in model.graph.node:
        if node.op_type == "Constant" and len(node.attribute) == 1 and (
                node.attribute[0].name == "value"):
            tensor = numpy_helper.from_array(numpy_helper.to_array(node.attribute[0].t),
                                             node.output[0])
            model.graph.initializer.append(tensor)
            moved.append(node)
    for node in moved:
        model.graph.node.remove(node)
    return len(moved)


def opset(model: Any) -> int:
    """The default-domain opset of ``model``."""
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def require_linear_layers(model: Any, path: Path) -> None:
    """Raises QuantizationError when there is nothing to quantize (no weighted layer)."""
    if not linear_layers(model):
        raise QuantizationError(
            f"{path} has no Conv, Gemm or MatMul with constant weights: there is nothing to "
            "quantize. Quantization pays off on models whose time goes to such layers.")


def untie_transposed_matmuls(model: Any) -> tuple[str, ...]:
    """Rewrite ``FusedMatMul(x, W, transB=1)`` with a constant ``W`` as ``MatMul(x, W^T)`` on
    its own transposed copy, in place; the names of the MatMuls made.

    onnxscript's ort_fusions writes a decoder's output layer that way when it shares its
    weight with the token embedding (tied): no weight quantizer takes a FusedMatMul, so the
    layer stayed float, or its shared table was dequantized whole on every call (a 113 MB
    FP32 read per token on SmolLM2-135M). Untied, the layer is a MatMul like any other and
    the embedding's Gather keeps reading its own rows.
    """
    from onnx import helper, numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    made = []
    for index, node in enumerate(model.graph.node):
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if (node.op_type != "FusedMatMul" or node.input[1] not in inits
                or attrs.get("transB") != 1 or attrs.get("transA", 0) != 0
                or attrs.get("alpha", 1.0) != 1.0 or len(node.input) != 2):
            continue
        weight = numpy_helper.to_array(inits[node.input[1]])
        name = f"{node.input[1]}_transposed"
        model.graph.initializer.append(numpy_helper.from_array(weight.T.copy(), name))
        matmul = helper.make_node("MatMul", [node.input[0], name], list(node.output),
                                  name=f"{node.name}_untied")
        model.graph.node.remove(node)
        model.graph.node.insert(index, matmul)
        made.append(matmul.name)
    return tuple(made)


def under_one_group(model: Any, group: int) -> tuple[str, ...]:
    """Constant-weight MatMuls whose reduction is shorter than the smallest 4-bit block
    (32, or the group if smaller): no linear layer, and rounding saves nothing there (a
    decoder's rotary positions x inverse frequencies, K = 1, whose 4-bit copy shifts every
    angle)."""
    from onnx import numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    return tuple(n.name for n in model.graph.node if n.op_type == "MatMul"
                 and n.input[1] in inits
                 and numpy_helper.to_array(inits[n.input[1]]).shape[0] < min(group, 32))


def drop_unused(graph: Any) -> None:
    """Remove nodes and initializers nothing reads any more (after a rewrite), in place."""
    while True:
        used = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
        dead = [n for n in graph.node if not any(o in used for o in n.output)]
        if not dead:
            break
        for n in dead:
            graph.node.remove(n)
    kept = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
