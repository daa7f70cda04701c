"""onnxscript's optimizer without its one quadratic rewrite rule, for exports and fusions.

``torch.onnx.export(dynamo=True)`` runs onnxscript's optimizer on every graph, and
``ort_fusions`` runs it three more times. Among its default rewrite rules, ``SlicesSplit``
(two Slices of one tensor -> a Split) is the only pattern with two output nodes, which
onnxscript 0.7's matcher tries by rebuilding its index of the whole graph for every Slice and
pairing it with every other Slice: quadratic in the graph. Measured on SmolLM2-135M on a
2-core Zen 3 (family 25 model 1): 27 s of an 81 s plain export (81 -> 54 s) and 35 s of a
120 s KV-cache export with its fusions (120 -> 85 s), while it rewrote nothing in either (the
same 2,181 nodes and 210 Slices; the same 60 rotary, 30 GQA fusions). A Split instead of two
Slices changes no kernel's speed, so the rule is left out while we export and fuse.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

# The rule left out, by its onnxscript name.
QUADRATIC_RULE = "SlicesSplit"


@contextlib.contextmanager
def lean_rewrites() -> Iterator[None]:
    """Within the block, onnxscript's default rewrite rules lack ``SlicesSplit``.

    The optimizer reads the module's rule tuple at each call, so the torch exporter and
    ``ort_fusions`` both see the lean set; it is restored on exit, error or not. An onnxscript
    without that tuple (a future layout) is left as it is."""
    from onnxscript import rewriter

    rules = getattr(rewriter, "_DEFAULT_REWRITE_RULES", None)
    if rules is None:
        yield
        return
    rewriter._DEFAULT_REWRITE_RULES = tuple(
        r for r in rules if getattr(r, "name", None) != QUADRATIC_RULE)
    try:
        yield
    finally:
        rewriter._DEFAULT_REWRITE_RULES = rules
