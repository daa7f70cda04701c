"""Models that carry a state from chunk to chunk (voice-activity detectors, keyword spotters),
scored over whole streams."""

from __future__ import annotations

from frugalml.deploy.families._family import Family, GraphFacts


def _claims(graph: GraphFacts) -> bool:
    return graph.task == "streaming"


# NOTE: a streaming model of a few MB is mostly recurrent weights, which ONNX Runtime keeps in
# float (it has no integer GRU) and QDQ or IR text adds to: INT8 buys it speed, not bytes. The
# size limit refuses growth beyond half again, not a missed shrink.
FAMILY = Family(
    name="streaming", about="state carried between calls, scored over streams",
    claims=_claims,
    candidates=frozenset({"int8-static", "int8-dynamic", "int8-nncf", "int8-openvino",
                          "int8-bf16-openvino", "fp32-openvino", "bf16-openvino", "fp16",
                          "fp16-cpu"}),
    budgets={"max_size_ratio": 1.5})
