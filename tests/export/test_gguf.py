"""GGUF input: converted once into a cached Hugging Face directory; bad files are typed errors
that leave nothing in the cache. (The real conversion runs in tests/quantize/test_smollm2.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench._data import smollm2_gguf
from frugalml.errors import ExportError
from frugalml.export.gguf import gguf_model_dir


def test_a_file_that_is_not_gguf_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"PK\x03\x04 a zip saved with the wrong name")
    with pytest.raises(ExportError, match="not a GGUF file"):
        gguf_model_dir(fake, cache_root=tmp_path / "cache")
    with pytest.raises(ExportError, match="Cannot read"):
        gguf_model_dir(tmp_path / "missing.gguf", cache_root=tmp_path / "cache")
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


def test_a_truncated_gguf_is_refused_and_leaves_no_cache_entry(tmp_path: Path) -> None:
    truncated = tmp_path / "cut.gguf"
    with smollm2_gguf().open("rb") as f:
        truncated.write_bytes(f.read(2_000_000))  # header and tokenizer, then half a tensor
    with pytest.raises(ExportError, match="truncated or corrupt"):
        gguf_model_dir(truncated, cache_root=tmp_path / "cache")
    assert [p.name for p in (tmp_path / "cache").iterdir()] == []


def test_the_tokenizer_adds_the_special_tokens_the_file_says() -> None:
    """SmolLM2's file says add_bos_token=false; transformers' conversion made its tokenizer put
    ``<|im_start|>`` before every prompt. The cached directory's tokenizer, the runtime's
    prompts and the scored windows now all follow the file."""
    import gguf
    from tokenizers import Tokenizer

    from frugalml.calibration.text import _tokenizer
    from frugalml.runtime.prompt import encode_prompt

    field = gguf.GGUFReader(str(smollm2_gguf())).fields["tokenizer.ggml.add_bos_token"]
    assert not bool(field.parts[field.data[0]][0])
    model_dir = gguf_model_dir(smollm2_gguf())
    plain = _tokenizer(str(model_dir))("ROMEO: speak", add_special_tokens=False)["input_ids"]
    assert _tokenizer(str(model_dir))("ROMEO: speak")["input_ids"] == plain
    runtime = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    assert encode_prompt(runtime, "ROMEO: speak") == plain
