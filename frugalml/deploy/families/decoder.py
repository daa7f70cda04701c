"""Decoders that generate text (a GGUF, a causal LM directory): 4-bit grouped weights, the
GGUF's own blocks first; scored by perplexity on token windows, profiled by decode steps."""

from __future__ import annotations

from frugalml.deploy.families._family import Family, GraphFacts

# A decoder's item is a 128-token window and its perplexity settles well before 2000 of them
# (254,000 tokens per candidate took 16 min for the first SmolLM2 candidate on 2 cores), so
# 64 windows (8,192 tokens).
EVAL_WINDOWS = 64


def _claims(graph: GraphFacts) -> bool:
    return graph.task == "language-model"


FAMILY = Family(
    name="decoder", about="a language model, scored by perplexity", claims=_claims,
    candidates=frozenset({"w4a8-gguf", "w4a8", "w4a8-awq", "w4a8-openvino", "fp16"}),
    eval_items=EVAL_WINDOWS, generates=True)
