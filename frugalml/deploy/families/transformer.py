"""Encoders with attention (BERT-style text models, ViTs whose patch embedding is one
convolution): ONNX Runtime's fused graph and dynamic INT8 beside the static and OpenVINO
candidates."""

from __future__ import annotations

from frugalml.deploy.families._family import Family, GraphFacts
from frugalml.export.model_info import ATTENTION


def _claims(graph: GraphFacts) -> bool:
    """Matrix products outnumber convolutions, with attention (a softmax or a fused
    attention operator)."""
    return graph.structure == ATTENTION


FAMILY = Family(
    name="transformer", about="matrix products and softmax attention", claims=_claims,
    candidates=frozenset({"fp32-fused", "int8-static", "int8-dynamic", "int8-dynamic-fused",
                          "int8-nncf", "int8-openvino", "int8-bf16-openvino", "fp32-openvino",
                          "bf16-openvino", "fp16", "fp16-cpu"}))
