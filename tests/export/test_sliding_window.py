"""A Gemma-3-style decoder (sliding-window attention on 5 layers of 6, QK-norm, one KV head,
tied embedding, per-layer rotary bases, query scale 1/sqrt(32) with head size 16) exported with
its KV cache and fused: the fused attention is told each layer's scale and window, and the
graph matches torch past the window (a 67-token prompt, window 8, 16 greedy steps)."""

from __future__ import annotations

from pathlib import Path

import onnx


def test_a_sliding_window_decoder_fuses_and_matches_torch_past_the_window(tmp_path: Path
                                                                          ) -> None:
    from frugalml.export.decoder import export_decoder
    from tests.decoders import tiny_gemma3

    exported = export_decoder(tiny_gemma3(tmp_path / "gemma3", window=8), tmp_path / "export")
    assert not exported.attempts, exported.attempts  # the fused graph was kept
    assert any(f.startswith("gqa x6") for f in exported.fusions), exported.fusions
    (logits,) = exported.checks  # greedy tokens equal torch's, logits within tolerance
    assert logits.passed and logits.min_cosine > 0.99999
    graph = onnx.load(str(exported.path), load_external_data=False).graph
    attention = [{a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
                 for n in graph.node if n.op_type == "GroupQueryAttention"]
    assert [a.get("local_window_size") for a in attention] == [8, 8, 8, 8, 8, None]
    assert all(abs(a["scale"] - 32 ** -0.5) < 1e-7 for a in attention)
