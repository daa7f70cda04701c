"""Read an OpenVINO model the way `_graph` reads ONNX: which layers run int8, int4 or float."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from frugalml.errors import QuantizationError
from frugalml.runtime.formats import is_onnx

_LINEAR = ("Convolution", "GroupConvolution", "MatMul", "ConvolutionBackpropData")
# Recurrent cells and the input index of their input weights W. Measured on the tests' tiny
# detectors (OpenVINO 2026.x, NNCF 3.x): NNCF quantizes an LSTMSequence (FakeQuantize on its
# input, int8 W and R; it ran as ref_any_I8) and leaves a GRUSequence float (ref_any_f32).
_RECURRENT = {"LSTMSequence": 4, "GRUSequence": 3, "RNNSequence": 3, "LSTMCell": 3,
              "GRUCell": 2, "RNNCell": 2}
# Operators that only move data between a FakeQuantize and the layer reading it.
_LAYOUT = ("Transpose", "Reshape", "Squeeze", "Unsqueeze", "Convert")
_INT4, _INT8 = ("u4", "i4", "nf4"), ("u8", "i8")


def ov_names(model: Any, nodes: tuple[str, ...], source: Path, *,
             optional: tuple[str, ...] = ()) -> tuple[str, ...]:
    """OpenVINO operation names for ONNX node names (the names `frugal diagnose` emits), and
    for those of ``optional`` that OpenVINO kept (it fuses some, e.g. a Div into a Multiply).

    OpenVINO keeps an ONNX node's name for the operation that produces its output and names
    the parts it splits off ``NAME/...`` (a Conv becomes ``NAME/WithoutBiases`` plus ``NAME``,
    the bias Add), so one ONNX name maps to all of them; except a node whose output is a
    graph output, whose operation takes that output's name (an MLP's last MatMul ``fc2``
    became ``logits``): it is found by its output names too.

    Raises:
        QuantizationError: a name matches no operation.
    """
    friendly = [op.get_friendly_name() for op in model.get_ops()]
    outputs = _outputs_of(source) if set(nodes) - set(friendly) else {}
    found, missing = [], []
    for node in (*nodes, *optional):
        names = (node, *outputs.get(node, ()))
        matches = [f for f in friendly if any(f == n or f.startswith(n + "/") for n in names)]
        if matches:
            found.extend(matches)
        elif node in nodes:
            missing.append(node)
    if missing:
        raise QuantizationError(f"Nodes to keep in float not found in {source}: {missing[:5]}. "
                                "Use the node names `frugal diagnose` printed for this model.")
    return tuple(found)


def _outputs_of(source: Path) -> dict[str, tuple[str, ...]]:
    """ONNX node name -> its output names, read from ``source`` without its weights (an IR
    source has no ONNX names to map: nothing)."""
    import onnx

    if not is_onnx(source):
        return {}
    graph = onnx.load(str(source), load_external_data=False).graph
    return {n.name: tuple(n.output) for n in graph.node}


def _weight_type(port: Any, depth: int = 6) -> str | None:
    """Element type of the constant behind a weight input (through Convert/Subtract/Multiply)."""
    node = port.get_source_output().get_node()
    for _ in range(depth):
        if node.get_type_name() == "Constant":
            return node.get_output_element_type(0).get_type_name()
        if node.get_input_size() == 0:
            return None
        node = node.input(0).get_source_output().get_node()
    return None


def _fake_quantized(port: Any) -> bool:
    """The input arrives from a FakeQuantize, through layout operators at most."""
    node = port.get_source_output().get_node()
    while node.get_type_name() in _LAYOUT and node.get_input_size():
        node = node.input(0).get_source_output().get_node()
    return bool(node.get_type_name() == "FakeQuantize")


def summarize_ov(model: Any) -> dict[str, tuple[str, ...]]:
    """The same four layer lists as :func:`frugalml.quantize._graph.summarize`, for OpenVINO."""
    kinds: dict[str, list[str]] = {"int8_activation_layers": [], "weight_only_layers": [],
                                   "int4_weight_layers": [], "float_layers": []}
    for op in model.get_ordered_ops():
        kind = op.get_type_name()
        if kind not in _LINEAR and kind not in _RECURRENT or op.get_input_size() < 2:
            continue
        weight = _weight_type(op.input(_RECURRENT.get(kind, 1)))
        if weight is None:
            continue  # activation x activation (attention): not a weighted layer
        fake_quantized = any(_fake_quantized(op.input(i)) for i in range(op.get_input_size()))
        name = op.get_friendly_name()
        if weight in _INT4:
            kinds["int4_weight_layers"].append(name)
        elif fake_quantized:
            kinds["int8_activation_layers"].append(name)
        elif weight in _INT8:
            kinds["weight_only_layers"].append(name)
        else:
            kinds["float_layers"].append(name)
    return {k: tuple(v) for k, v in kinds.items()}
