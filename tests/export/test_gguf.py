"""GGUF input: converted once into a cached Hugging Face directory; bad files are typed errors
that leave nothing in the cache. (The real conversion runs in tests/quantize/test_smollm2.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from frugalml.errors import ExportError
from frugalml.export.gguf import gguf_model_dir
from tests.realdata import smollm2_gguf


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
