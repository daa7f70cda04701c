"""What the fused attention must be told that its pattern does not show: scale, sliding window
and logit soft-capping, layer by layer, from the model's own configuration.

onnxscript's ``ort_fusions`` rewrites a decoder's attention into ``GroupQueryAttention`` from
the graph's shapes, leaving the op's defaults for the rest: a scale of 1/sqrt(head size) and
attention over the whole cache. Gemma 3 scales queries by 1/sqrt(``query_pre_attn_scalar``) and
attends over a sliding window of 512 tokens in five layers of six: a tiny Gemma 3 (window 8,
query scalar 32, head size 16) fused so chose other greedy tokens from the first step, and
with these attributes set matches torch past the window (logit cosine 0.9999999999999).
"""

from __future__ import annotations

from typing import Any

from frugalml.errors import ExportError

SLIDING = "sliding_attention"


def attention_settings(model: Any) -> list[dict[str, float | int]]:
    """Per decoder layer, the ``GroupQueryAttention`` attributes that say what its attention
    computes: ``scale`` (where it is not the op's default), ``local_window_size`` where the
    layer attends over a sliding window, ``softcap`` where attention logits are soft-capped
    (Gemma 2).

    Raises:
        ExportError: the model's layers or their attention scale cannot be read (the fused
            graph is then not kept).
    """
    config = model.config
    layers = getattr(getattr(model, "model", None), "layers", None)
    if layers is None or not all(hasattr(getattr(layer, "self_attn", None), "scaling")
                                 for layer in layers):
        raise ExportError(f"{type(model).__name__} does not show its layers' attention scale "
                          "(model.layers[i].self_attn.scaling): the fused attention's scale and "
                          "window cannot be set, so the unfused graph is kept.")
    window = getattr(config, "sliding_window", None)
    types = getattr(config, "layer_types", None) or (
        [SLIDING] * len(layers) if window and getattr(config, "use_sliding_window", True)
        else ["full_attention"] * len(layers))
    softcap = getattr(config, "attn_logit_softcapping", None)
    settings: list[dict[str, float | int]] = []
    for layer, kind in zip(layers, types, strict=True):
        found: dict[str, float | int] = {}
        scale, head = float(layer.self_attn.scaling), getattr(layer.self_attn, "head_dim", None)
        if head is None or abs(scale * head ** 0.5 - 1.0) > 1e-9:
            found["scale"] = scale  # the op's default is 1/sqrt(head size): left as it is
        if kind == SLIDING and window:
            found["local_window_size"] = int(window)
        if softcap:
            found["softcap"] = float(softcap)
        settings.append(found)
    return settings


def set_attention(model: Any, settings: list[dict[str, float | int]]) -> None:
    """Set ``settings`` on the fused graph's ``GroupQueryAttention`` nodes, in layer order;
    in place on an ``onnx_ir`` model.

    Raises:
        ExportError: the graph has not one such node per layer, so which is which is unknown.
    """
    import onnx_ir as ir

    nodes = [n for n in model.graph if n.op_type == "GroupQueryAttention"]
    if len(nodes) != len(settings):
        raise ExportError(f"ort_fusions made {len(nodes)} GroupQueryAttention nodes for "
                          f"{len(settings)} decoder layers: their scale and window cannot be "
                          "set layer by layer, so the unfused graph is kept.")
    for node, found in zip(nodes, settings, strict=True):
        for name, value in found.items():
            node.attributes[name] = (ir.AttrInt64(name, value) if isinstance(value, int)
                                     else ir.AttrFloat32(name, value))
