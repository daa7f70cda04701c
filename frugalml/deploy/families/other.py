"""Everything no other family claims (MLPs, recurrent models scored per item, graphs of
matrix products without attention): the candidates that make no assumption of structure."""

from __future__ import annotations

from frugalml.deploy.families._family import Family, GraphFacts


def _claims(graph: GraphFacts) -> bool:
    return True


FAMILY = Family(
    name="other", about="no other family claims it", claims=_claims,
    candidates=frozenset({"int8-static", "int8-nncf", "int8-openvino", "int8-bf16-openvino",
                          "fp32-openvino", "bf16-openvino", "fp16", "fp16-cpu"}))
