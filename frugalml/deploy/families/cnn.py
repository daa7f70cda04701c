"""Convolutional networks: image classifiers, detectors, OCR backbones. ONNX Runtime's static
INT8 with every operator it can quantize, NNCF, and OpenVINO at each precision the CPU has."""

from __future__ import annotations

from frugalml.deploy.families._family import Family, GraphFacts
from frugalml.export.model_info import CONVOLUTIONAL


def _claims(graph: GraphFacts) -> bool:
    """At least as many convolutions as matrix products (and one)."""
    return graph.structure == CONVOLUTIONAL


FAMILY = Family(
    name="cnn", about="convolutions at least as many as matrix products", claims=_claims,
    candidates=frozenset({"int8-static", "int8-nncf", "int8-openvino", "int8-bf16-openvino",
                          "fp32-openvino", "bf16-openvino", "fp16", "fp16-cpu"}))
