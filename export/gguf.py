"""GGUF checkpoints (llama.cpp's format) -> a Hugging Face model directory, cached by content.

Small decoders often ship only as GGUF. Transformers can read one (dequantizing every tensor to
float32), but that takes ~40 s for a 135M model, so the result is saved once as safetensors
plus config and tokenizer, in a directory named by the GGUF file's sha256; later exports and
quantizations start from that directory like any other Hugging Face model.
"""

from __future__ import annotations

import os
from pathlib import Path

from frugalml.core.atomic import staged
from frugalml.core.records import file_sha256, write_json_atomic
from frugalml.errors import ExportError, require

_MAGIC = b"GGUF"


def default_cache_root() -> Path:
    """``$FRUGALML_CACHE/gguf`` or ``~/.cache/frugalml/gguf``."""
    root = os.environ.get("FRUGALML_CACHE") or Path.home() / ".cache" / "frugalml"
    return Path(root) / "gguf"


def gguf_model_dir(gguf_file: Path, cache_root: Path | None = None) -> Path:
    """The Hugging Face directory for ``gguf_file``, dequantized on first use.

    Raises:
        ExportError: the file is missing or not GGUF, or transformers cannot read its
            architecture.
        FrugalError: ``gguf`` or ``accelerate`` (the ``gguf`` extra) is not installed.
    """
    gguf_file = Path(gguf_file)
    _check_magic(gguf_file)
    sha = file_sha256(gguf_file)
    dest = (cache_root or default_cache_root()) / sha[:24]
    if not ((dest / "config.json").is_file() and (dest / "model.safetensors").is_file()):
        require("gguf", extra="gguf")
        require("accelerate", extra="gguf")
        with staged(dest, error=ExportError) as stage:
            _dequantize_into(gguf_file, stage)
    # Where the quantized blocks are (the gguf quantize backend keeps them): this file now.
    # Beside the directory, not in it: the directory's digest must not depend on locations.
    write_json_atomic(_source_record(dest), {"path": str(gguf_file.resolve()), "sha256": sha})
    return dest


def _source_record(model_dir: Path) -> Path:
    return model_dir.with_name(model_dir.name + ".source.json")


def gguf_source(model_dir: Path) -> dict[str, str] | None:
    """``{"path", "sha256"}`` of the GGUF a cached model directory came from, else None."""
    import json

    record = _source_record(Path(model_dir))
    return json.loads(record.read_text()) if record.is_file() else None


def _check_magic(path: Path) -> None:
    try:
        with path.open("rb") as f:
            magic = f.read(4)
    except OSError as e:
        raise ExportError(f"Cannot read {path}: {e}.") from e
    if magic != _MAGIC:
        raise ExportError(f"{path} is not a GGUF file (it does not start with 'GGUF'); it is "
                          "truncated, or another format saved with a .gguf name.")


def _dequantize_into(gguf_file: Path, out_dir: Path) -> None:
    """Load through transformers' GGUF reader (float32) and save as safetensors."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    where, name = str(gguf_file.parent), gguf_file.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(where, gguf_file=name, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(
            where, gguf_file=name, local_files_only=True, dtype="float32")
    except (OSError, ValueError, KeyError) as e:
        raise ExportError(f"Transformers cannot read {gguf_file} ({str(e)[:300]}): the file is "
                          "truncated or corrupt, or holds an architecture transformers does not "
                          "convert from GGUF (it converts llama, mistral, qwen2, ...).") from e
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
