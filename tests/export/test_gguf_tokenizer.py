"""A sentencepiece-BPE vocabulary from a GGUF, tokenized as llama.cpp does: the rebuilt
tokenizer against sentencepiece itself (llama.cpp's SPM tokenizer is its port), with and
without the dummy space prefix, on text with characters outside the vocabulary (bytes)."""

from __future__ import annotations

from pathlib import Path

import pytest

TEXT = ("First Citizen: Before we proceed any further, hear me speak.\n"
        "Café naïve — 日本語 \t tabs  two  spaces ")


@pytest.mark.parametrize("space_prefix", [False, True])
def test_the_rebuilt_bpe_cuts_text_as_sentencepiece_does(tmp_path: Path,
                                                         space_prefix: bool) -> None:
    import sentencepiece
    from sentencepiece import sentencepiece_model_pb2

    from bench._data import tiny_shakespeare
    from frugalml.export.gguf_tokenizer import spm_bpe
    from tests.decoders import spm_vocabulary

    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(spm_vocabulary(tmp_path / "v.model").read_bytes())
    proto.normalizer_spec.add_dummy_prefix = space_prefix
    reference = sentencepiece.SentencePieceProcessor(model_proto=proto.SerializeToString())
    pieces = proto.pieces
    ours = spm_bpe([p.piece for p in pieces], [p.score for p in pieces],
                   [p.type for p in pieces], add_space_prefix=space_prefix, unk_id=3)
    lines = tiny_shakespeare().read_text(encoding="utf-8").splitlines()[:5000]
    for text in (TEXT, *lines):
        assert ours.encode(text, add_special_tokens=False).ids == reference.encode(text), text
    encoded = ours.encode(TEXT, add_special_tokens=False)
    assert "<0xC3>" in encoded.tokens  # é is not a piece: its UTF-8 bytes are
    assert ours.decode(encoded.ids) == reference.decode(reference.encode(TEXT)) == TEXT


def test_a_gguf_without_a_sentencepiece_vocabulary_is_left_to_transformers(
        tmp_path: Path) -> None:
    from gguf import GGUFReader

    from frugalml.export.gguf_tokenizer import gguf_spm
    from tests.decoders import tiny_llama_gguf

    fields = GGUFReader(str(tiny_llama_gguf(tmp_path / "llama.gguf"))).fields
    assert gguf_spm(fields) is None  # a gpt2 BPE: its merges are in the file
