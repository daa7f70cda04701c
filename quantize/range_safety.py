"""Keep one activation scale off tensors of very different ranges, before quantizing.

Measured on a YOLO-style detector whose single output concatenates box coordinates (0-320
pixels) with sigmoid class scores: ONNX Runtime put one uint8 scale (1.24) on that Concat, so
every score became 0 or 1.24 and 88 % of the detections vanished; NNCF's unified Concat scale
kept 46 %. Four rules, on the FP32 ONNX graph, give node names both backends exclude:

1. **The output tail**: nodes after the last weighted layer on every path to an output (box
   decoding, Sigmoid, the Concat/Split/Slice that assemble the outputs). Quantizing them saves
   nothing measurable (elementwise work on small tensors) and mixes scales.
2. **Mixed ranges**: a Concat elsewhere whose inputs' calibrated ranges differ by more than
   :data:`MAX_RANGE_RATIO`. Measured on two Conv branches of ranges ~100 and ~1: NNCF gives a
   Concat's inputs one scale (1.34 on both); Add and Mul inputs keep their own scales in both
   backends (1.27 and 0.014), so only Concat is watched. ONNX Runtime shared the Concat scale
   when the Concat made a graph output (the detector) and not between two Conv outputs.
3. **Decision heads**: the weighted layer that makes an output of one value per item (a
   speech probability ``[batch, 1]``, a binary score) before its tail. That value is
   thresholded, so its INT8 rounding moves decisions one for one. Measured on the tests'
   streaming GRU detector (int8-static, everything else as the search found it): frame
   agreement 0.744 with the head Gemm in INT8, 1.000 (segment agreement 1.000, state cosine
   0.9996) with it in float and the Conv still INT8. Its weights are ``[features, 1]``: the
   float layer costs nothing measurable.
4. **Log inputs**: a Log's input, back through its elementwise chain to and including the
   nearest weighted layer (an audio front end: frames -> spectrum MatMul -> |.| -> +1 ->
   Log). A Log is there because the values span orders of magnitude; one uniform INT8 scale
   on the waveform or the spectrum before it rounds the quiet end, which the Log exists to
   show, to zero. Measured on the tests' detector over real (espeak-ng) speech, int8-static:
   frame agreement 0.570 with that chain in INT8 (the head in float or not), 0.998 with it in
   float and the Conv after the Log still INT8.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import numpy as np

from frugalml.quantize._graph import LINEAR_OPS

MAX_RANGE_RATIO = 8.0
# Operators that give all their activation inputs one scale in ONNX Runtime's and NNCF's QDQ.
SHARED_SCALE_OPS = ("Concat",)
_STRUCTURAL = ("Constant", "Shape", "ConstantOfShape")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class RangeSafety:
    """The nodes kept in float and why; goes into ``quantize.json``."""

    output_tail: tuple[str, ...] = ()
    decision_heads: tuple[str, ...] = ()
    log_inputs: tuple[str, ...] = ()
    mixed_ranges: tuple[dict[str, Any], ...] = ()

    @property
    def nodes(self) -> tuple[str, ...]:
        """Every node name to keep in float."""
        return (self.output_tail + self.decision_heads + self.log_inputs
                + tuple(m["node"] for m in self.mixed_ranges))

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {"output_tail": list(self.output_tail),
                "decision_heads": list(self.decision_heads),
                "log_inputs": list(self.log_inputs),
                "mixed_ranges": list(self.mixed_ranges), "max_range_ratio": MAX_RANGE_RATIO}


def output_tail(model: Any) -> tuple[str, ...]:
    """Names of the nodes that no weighted layer reads from, directly or through other nodes.

    Those are the model's post-processing: every path from them leads to an output without
    passing a Conv, Gemm or MatMul with constant weights.
    """
    inits = {i.name for i in model.graph.initializer}
    producer = {out: node for node in model.graph.node for out in node.output}
    feeds_layer: set[str] = set()
    stack = [n for n in model.graph.node if n.op_type in LINEAR_OPS]
    while stack:
        node = stack.pop()
        for name in node.input:
            source = producer.get(name)
            if source is not None and name not in inits and source.name not in feeds_layer:
                feeds_layer.add(source.name)
                stack.append(source)
    return tuple(n.name for n in model.graph.node
                 if n.op_type not in LINEAR_OPS and n.op_type not in _STRUCTURAL
                 and n.name not in feeds_layer)


def decision_heads(model: Any, tail: tuple[str, ...]) -> tuple[str, ...]:
    """Names of the weighted layers that make an output of one value per item (every dim
    after the first is 1), found by walking back from it through ``tail`` nodes only."""
    producer = {out: node for node in model.graph.node for out in node.output}
    inits = {i.name for i in model.graph.initializer}
    after = set(tail)
    heads: list[str] = []
    for output in model.graph.output:
        dims = output.type.tensor_type.shape.dim
        if not dims or any(d.dim_value != 1 for d in dims[1:]):
            continue
        stack, seen = [output.name], set()
        while stack:
            node = producer.get(stack.pop())
            if node is None or node.name in seen:
                continue
            seen.add(node.name)
            if node.op_type in LINEAR_OPS:
                if node.name not in heads:
                    heads.append(node.name)
            elif node.name in after:
                stack.extend(i for i in node.input if i and i not in inits)
    return tuple(heads)


def log_inputs(model: Any) -> tuple[str, ...]:
    """Names of the nodes that feed a Log: its elementwise chain back to and including the
    nearest weighted layer on each path (graph inputs and constants end a path too)."""
    producer = {out: node for node in model.graph.node for out in node.output}
    found: list[str] = []
    stack = [i for n in model.graph.node if n.op_type == "Log" for i in n.input]
    while stack:
        node = producer.get(stack.pop())
        if node is None or node.name in found or node.op_type in _STRUCTURAL:
            continue
        found.append(node.name)
        if node.op_type not in LINEAR_OPS:
            stack.extend(i for i in node.input if i)
    return tuple(found)


def graph_only(model: Any) -> RangeSafety:
    """The rules that read only the graph (tail, decision heads, Log inputs): for quantizers
    that take no calibrated activation scales, where a mixed-range Concat shares nothing."""
    tail = output_tail(model)
    return RangeSafety(output_tail=tail, decision_heads=decision_heads(model, tail),
                       log_inputs=tuple(n for n in log_inputs(model) if n not in tail))


def mixed_ranges(model: Any, feeds: Iterator[dict[str, np.ndarray]], skip: set[str]
                 ) -> tuple[dict[str, Any], ...]:
    """Shared-scale nodes (outside ``skip``) whose inputs' FP32 ranges differ more than
    :data:`MAX_RANGE_RATIO`, with the ranges, from running FP32 on ``feeds``."""
    inits = {i.name for i in model.graph.initializer}
    watched = [n for n in model.graph.node if n.op_type in SHARED_SCALE_OPS
               and n.name not in skip
               and sum(1 for i in n.input if i and i not in inits) >= 2]
    tensors = sorted({i for n in watched for i in n.input if i and i not in inits})
    if not tensors:
        return ()
    ranges = _ranges(model, tensors, feeds)
    found = []
    for node in watched:
        spans = {i: ranges[i] for i in node.input if i in ranges}
        widths = [hi - lo for lo, hi in spans.values()]
        if len(widths) >= 2 and min(widths) > 0 and max(widths) / min(widths) > MAX_RANGE_RATIO:
            found.append({"node": node.name, "op_type": node.op_type,
                          "ratio": round(max(widths) / min(widths), 2),
                          "input_ranges": {k: [round(lo, 6), round(hi, 6)]
                                           for k, (lo, hi) in spans.items()}})
    return tuple(found)


def _ranges(model: Any, tensors: list[str], feeds: Iterator[dict[str, np.ndarray]]
            ) -> dict[str, tuple[float, float]]:
    """min and max of each named tensor over the calibration feeds, through FP32."""
    import onnx
    import onnxruntime as ort

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    outputs = {o.name for o in probe.graph.output}
    probe.graph.output.extend(onnx.ValueInfoProto(name=t) for t in tensors if t not in outputs)
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    low = dict.fromkeys(tensors, np.inf)
    high = dict.fromkeys(tensors, -np.inf)
    for item in feeds:
        for name, value in zip(tensors, session.run(tensors, item), strict=True):
            if value.size:
                low[name] = min(low[name], float(value.min()))
                high[name] = max(high[name], float(value.max()))
    return {t: (low[t], high[t]) for t in tensors if np.isfinite(low[t])}


def analyse(model: Any, feeds: Iterator[dict[str, np.ndarray]]) -> RangeSafety:
    """Every rule on an FP32 ``onnx.ModelProto``, the ranges from ``feeds``."""
    found = graph_only(model)
    return dataclasses.replace(found, mixed_ranges=mixed_ranges(model, feeds, set(found.nodes)))
