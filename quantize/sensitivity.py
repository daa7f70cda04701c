"""How much each quantized node of an INT8 model costs, measured cheaply: the probe behind
`frugal diagnose`'s ranking and the start of its search.

The probe runs the FP32 and the INT8 model on a few evaluation items and puts chosen nodes
back in float in memory (:mod:`~frugalml.quantize._dequantize`, no re-quantization): about
a second on MiniLM, where quantizing and scoring a point takes twelve. What it cannot see is
what the backend will refuse to change; :func:`kept_in_int8` measures that once, so that only
nodes a backend can take out of int8 are ranked.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from frugalml.core.progress import Steps
from frugalml.quantize._dequantize import dequantize_layers
from frugalml.quantize._graph import LINEAR_OPS, summarize
from frugalml.quantize._protocol import CalibrationData
from frugalml.quantize.accuracy import batches, open_model, task_of
from frugalml.quantize.parts import OutputParts
from frugalml.quantize.scoring import COSINE_CHECK


@dataclasses.dataclass(frozen=True, slots=True)
class Sensitivity:
    """One layer's share of the error: output cosine to FP32 with only it in float."""

    node: str
    cosine_alone_in_float: float
    recovered: float


def _probe(model: Any, feeds: list[dict[str, np.ndarray]], output: str) -> list[np.ndarray]:
    """One output of an in-memory ONNX model on the probe batches."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # a bypassed pair leaves its scale unused: not news
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    return [session.run([output], f)[0] for f in feeds]


def _worst_part(ref: list[np.ndarray], cand: list[np.ndarray], output: str) -> float:
    """Mean cosine to FP32 of the output's worst part: the whole output, or the channel group
    of another scale whose loss a whole-tensor cosine hides (:mod:`~frugalml.quantize.parts`).
    Language-model logits are compared per token. An output of one value per item (a
    detector's probability) scores 1 - its mean absolute error: a cosine over one number is
    always 1, and ranked nothing."""
    if all(r.size == len(r) for r in ref):
        return 1.0 - float(np.mean([np.abs(r.astype(np.float64) - c).mean()
                                    for r, c in zip(ref, cand, strict=True)]))
    parts = OutputParts(output)
    for r, c in zip(ref, cand, strict=True):
        if r.ndim == 3 and r.shape[-1] > 1000:  # logits [N, T, V]: one row per token
            r, c = r.reshape(-1, r.shape[-1]), c.reshape(-1, c.shape[-1])
        parts.add(r, c)
    return min(p.mean_cosine for p in parts.scores())


# Activation-only operators that pass their input's scale through unchanged: taking one back
# to float cannot change the error.
_SCALE_PRESERVING = ("Relu", "Clip", "MaxPool", "Reshape", "Transpose", "Flatten", "Squeeze",
                     "Unsqueeze", "Identity", "QuantizeLinear", "DequantizeLinear")


def _pair_outputs(model: Any) -> set[str]:
    """The tensors read through a QuantizeLinear/DequantizeLinear pair (the pairs' outputs)."""
    producer = {out: n for n in model.graph.node for out in n.output}
    return {n.output[0] for n in model.graph.node if n.op_type == "DequantizeLinear"
            and producer.get(n.input[0]) is not None
            and producer[n.input[0]].op_type == "QuantizeLinear"}


def _quantized_inputs(model: Any) -> dict[str, int]:
    """How many of each node's inputs it reads through a QuantizeLinear/DequantizeLinear pair."""
    pairs = _pair_outputs(model)
    return {n.name: len(set(n.input) & pairs) for n in model.graph.node}


def quantized_nodes(model: Any) -> tuple[str, ...]:
    """The INT8 layers and the activation-only nodes (Concat, Add, Resize ...) that read an
    input through a QuantizeLinear/DequantizeLinear pair: every node whose quantization can
    cost accuracy on its own. (A node with only its output quantized, a GELU before a MatMul,
    is the MatMul's input: ranking it would rank a node the backend never quantized.)"""
    layers, reads = set(summarize(model)["int8_activation_layers"]), _quantized_inputs(model)
    return tuple(n.name for n in model.graph.node if n.name in layers or (
        n.op_type not in LINEAR_OPS and n.op_type not in _SCALE_PRESERVING and reads[n.name]))


def activation_only(model: Any, nodes: tuple[str, ...]) -> tuple[str, ...]:
    """The ``nodes`` of ``model`` that are no INT8 layer: their only int8 is a Q/DQ pair."""
    kinds = {n.name: n.op_type for n in model.graph.node}
    return tuple(n for n in nodes if kinds[n] not in LINEAR_OPS)


def kept_in_int8(quantized: Any, told: Path, nodes: tuple[str, ...]) -> tuple[str, ...]:
    """The activation-only ``nodes`` of ``quantized`` that read as many inputs through Q/DQ
    pairs in ``told`` (the same backend told to keep every one of them in float) as before:
    the backend shares one pair among a tensor's readers, so while another reader stays int8
    the exclusion changes nothing, and a point that excludes such a node costs a quantization
    and buys nothing. On MiniLM, ONNX Runtime keeps all 12 residual Adds' pairs (each shares
    its input with the next layer's MatMul); ranked, they took 4 of the top 4 and 7 of the 17
    nodes the search kept in float, and made the probe's prediction 8 where 17 were needed."""
    import onnx

    after = _quantized_inputs(onnx.load(str(told)))
    before = _quantized_inputs(quantized)
    return tuple(n for n in nodes if after.get(n, 0) >= before[n])


class Probe:
    """One output of the FP32 and the INT8 model on a few evaluation items, and the mean
    cosine of its worst part with chosen nodes put back in float (``_dequantize``, no
    re-quantization): a second on MiniLM, where a quantize-and-score point takes twelve."""

    def __init__(self, quantized: Path, fp32: Path, data: CalibrationData, items: int,
                 task: str | None) -> None:
        import onnx

        self.q_model, self.f_model = onnx.load(str(quantized)), onnx.load(str(fp32))
        reference = open_model(fp32)
        try:
            found_task, self.output = task_of(reference, data, task)
            self.feeds = [f for f, _ in batches(data, items, found_task)]
        finally:
            reference.close()
        self.followers: dict[str, frozenset[str]] = {}
        self.ref = _probe(self.f_model, self.feeds, self.output)
        self.base = self.cosine(())

    def follow(self, kept: tuple[str, ...], ranked: tuple[str, ...]) -> None:
        """Model how the backend treats the ``kept`` nodes: each reads its shared pairs until
        every ranked node sharing them is in float, and then reads float too (ONNX Runtime
        drops a pair no quantized node reads). Without this the probe sees no gain in the
        Adds a point frees, and on MiniLM predicted more than 29 float nodes where 9 did."""
        pairs, rankable = _pair_outputs(self.q_model), set(ranked)
        readers: dict[str, set[str]] = {}
        for node in self.q_model.graph.node:
            for tensor in set(node.input) & pairs:
                readers.setdefault(tensor, set()).add(node.name)
        inputs = {n.name: set(n.input) & pairs for n in self.q_model.graph.node}
        self.followers = {k: frozenset(r for t in inputs[k] for r in readers[t] & rankable)
                          for k in kept}

    def cosine(self, nodes: tuple[str, ...]) -> float:
        """Worst-part mean cosine to FP32 with ``nodes`` in float (and the kept nodes that
        follow them, :meth:`follow`)."""
        freed = [k for k, partners in self.followers.items() if partners
                 and partners <= set(nodes)]
        nodes = (*nodes, *freed)
        model = dequantize_layers(self.q_model, self.f_model, list(nodes)) if nodes else (
            self.q_model)
        return _worst_part(self.ref, _probe(model, self.feeds, self.output), self.output)


def rank_layers(probe: Probe, nodes: tuple[str, ...],
                steps: Steps | None = None) -> tuple[Sensitivity, ...]:
    """Rank ``nodes`` of the probed model by how much of the worst output part's cosine to
    FP32 each recovers when it alone is back in float."""
    steps = steps or Steps(quiet=True)
    found = []
    for name in steps.track(nodes, total=len(nodes), title="one node at a time in float"):
        cos = probe.cosine((name,))
        found.append(Sensitivity(name, cos, cos - probe.base))
    return tuple(sorted(found, key=lambda s: -s.recovered))


def predicted_start(probe: Probe, ranking: tuple[Sensitivity, ...],
                    accuracy: dict[str, Any]) -> int:
    """Where the search starts: when every failed check is a cosine limit (what the probe
    measures), the fewest top-ranked nodes whose probe cosine reaches it, by bisection (about
    six probes for 42 nodes; all of them when none does); else 1. The probe sees fewer items
    and no re-quantization, so this is where the search starts, never its answer."""
    failed = [c for c in accuracy["checks"] if not c["passed"]]
    if not ranking or not failed or not all(c["name"].startswith(COSINE_CHECK) for c in failed):
        return 1
    limit = max(c["limit"] for c in failed)
    low, high = 0, len(ranking)
    while high - low > 1:
        mid = (low + high) // 2
        if probe.cosine(tuple(s.node for s in ranking[:mid])) >= limit:
            high = mid
        else:
            low = mid
    return high
