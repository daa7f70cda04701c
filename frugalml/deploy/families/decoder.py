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


# Who brings a GGUF chose its grid and expects its accuracy: from one, a candidate may add at
# most 2 % to FP32's perplexity (FP32 is the file's weights). The file's own blocks measured
# +0.53 % on SmolLM2 Q4_1 over 64 windows (95 % CI +0.19..+0.88) and +0.93 % over 8 windows
# (CI +0.05..+1.78), +0.9 % on Gemma 3 Q4_K_M: int8 activations, as llama.cpp's q8 dot
# products. The 20 % default shipped AWQ re-rounded at +16.4 % instead (3.44x vs 2.94x);
# --max-ppl-rise 20 asks for that trade.
GGUF_MAX_PPL_RISE_PCT = 2.0

FAMILY = Family(
    name="decoder", about="a language model, scored by perplexity", claims=_claims,
    candidates=frozenset({"w4a8-gguf", "w4a8", "w4a8-awq", "w4a8-openvino", "fp16"}),
    source_budgets={"gguf": {"max_perplexity_increase_pct": GGUF_MAX_PPL_RISE_PCT}},
    eval_items=EVAL_WINDOWS, generates=True)
