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
    _fused_with_windows_and_equal_to_torch(exported, scale=32 ** -0.5)


def _fused_with_windows_and_equal_to_torch(exported: object, scale: float) -> None:
    """Every attention fused (windows 8 on five layers, full on the sixth, the model's query
    scale), and the export's check passed: greedy tokens equal torch's, logits within 1e-5."""
    assert not exported.attempts, exported.attempts  # the fused graph was kept
    assert any(f.startswith("gqa x6") for f in exported.fusions), exported.fusions
    (logits,) = exported.checks
    assert logits.passed and logits.min_cosine > 0.99999
    graph = onnx.load(str(exported.path), load_external_data=False).graph
    attention = [{a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
                 for n in graph.node if n.op_type == "GroupQueryAttention"]
    assert [a.get("local_window_size") for a in attention] == [8, 8, 8, 8, 8, None]
    assert all(abs(a["scale"] - scale) < 1e-7 for a in attention)


def test_a_gemma3_gguf_written_as_llama_cpp_writes_it_exports_and_matches_past_the_window(
        tmp_path: Path) -> None:
    """The same architecture from a ``gemma3`` GGUF (llama.cpp's names, norms with the +1
    folded in, no output table, a sentencepiece vocabulary): transformers reads back exactly
    the model that was written; the tokenizer cuts every line of tiny-shakespeare as
    sentencepiece (which llama.cpp reproduces) does, BOS first, where transformers' own
    conversion (a Unigram over the scores) cuts more pieces; and the export from the file
    (through the GGUF cache, as `frugal deploy FILE.gguf` runs it) fuses every attention with
    its window and equals torch token for token over a 67-token prompt and 16 greedy steps."""
    import sentencepiece
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from bench._data import tiny_shakespeare
    from frugalml.export.decoder import PROMPT, export_decoder
    from frugalml.export.gguf import gguf_model_dir
    from frugalml.export.huggingface import load_tokenizer
    from tests.decoders import tiny_gemma3_gguf

    gguf_file = tiny_gemma3_gguf(tmp_path / "tiny-gemma3.gguf", window=8)
    model_dir = gguf_model_dir(gguf_file, cache_root=tmp_path / "cache")
    ids = torch.arange(40)[None]
    with torch.no_grad():
        written = AutoModelForCausalLM.from_pretrained(tmp_path / "tiny-gemma3-hf")(ids).logits
        read = AutoModelForCausalLM.from_pretrained(model_dir)(ids).logits
    assert torch.equal(written, read)
    ours = load_tokenizer(model_dir)
    reference = sentencepiece.SentencePieceProcessor(
        model_file=str(tmp_path / "tiny-gemma3.spm.model"))
    lines = tiny_shakespeare().read_text(encoding="utf-8").splitlines()
    assert [ours(line)["input_ids"] for line in lines] == [
        [reference.bos_id(), *reference.encode(line)] for line in lines]
    theirs = AutoTokenizer.from_pretrained(tmp_path, gguf_file=gguf_file.name)
    text = "\n".join(lines[:2000])
    assert len(theirs(text)["input_ids"]) > 1.04 * len(ours(text)["input_ids"])
    assert len(ours(PROMPT)["input_ids"]) > 8 * 8  # the export check runs past the window
    exported = export_decoder(model_dir, tmp_path / "export")
    _fused_with_windows_and_equal_to_torch(exported, scale=256 ** -0.5)
