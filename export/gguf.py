"""GGUF checkpoints (llama.cpp's format) -> a Hugging Face model directory, cached by content.

Small decoders often ship only as GGUF. Transformers can read one (dequantizing every tensor to
float32), but that takes ~40 s for a 135M model, so the result is saved once as safetensors
plus config and tokenizer, in a directory named by the GGUF file's sha256; later exports and
quantizations start from that directory like any other Hugging Face model.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from frugalml.core.atomic import staged
from frugalml.core.records import file_sha256, write_json_atomic
from frugalml.errors import ExportError, require
from frugalml.export.gguf_tokenizer import gguf_spm
from frugalml.runtime.prompt import special_prefix

_MAGIC = b"GGUF"
# Bumped when what is written changes: 2 = the tokenizer adds the special tokens the file says;
# 3 = a sentencepiece vocabulary is tokenized as llama.cpp does (export.gguf_tokenizer).
_LAYOUT = 3
_SPECIAL_FLAGS = ("add_bos_token", "add_eos_token")


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
    dest = (cache_root or default_cache_root()) / f"{sha[:24]}-{_LAYOUT}"
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
    record = _source_record(Path(model_dir))
    return json.loads(record.read_text()) if record.is_file() else None


def gguf_file(sha256: str, cache_root: Path | None = None) -> Path | None:
    """Where this machine last saw the GGUF file whose content is ``sha256`` (the record its
    conversion left in the cache), if it is still there with that content; else None.

    An export names its GGUF by digest only, so an export moved or shared elsewhere carries
    no machine path; the location lives in this machine's cache, and is checked again."""
    root = cache_root or default_cache_root()
    for record in sorted(root.glob(f"{sha256[:24]}-*.source.json")):
        path = Path(json.loads(record.read_text()).get("path", ""))
        if path.is_file() and file_sha256(path) == sha256:
            return path
    return None


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
    _as_llama_cpp_tokenizes(gguf_file, tokenizer)
    _special_tokens_as_in(gguf_file, tokenizer)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)


def _as_llama_cpp_tokenizes(gguf_file: Path, tokenizer: Any) -> None:
    """Give ``tokenizer`` the pieces llama.cpp would cut: a sentencepiece-BPE vocabulary is
    rebuilt as a score-ranked BPE (:mod:`frugalml.export.gguf_tokenizer`; transformers reads
    it as a Unigram model and over-splits). Other vocabularies are left as transformers built
    them (a ``gpt2`` BPE's merges are in the file)."""
    from gguf import GGUFReader

    rebuilt = gguf_spm(GGUFReader(str(gguf_file)).fields)
    if rebuilt is None:
        return
    tokenizer._tokenizer, specials = rebuilt  # the backend: what save_pretrained writes
    for role, piece in specials.items():  # the file's pieces, not the class's default names
        setattr(tokenizer, role, piece)
    if hasattr(tokenizer, "update_post_processor"):  # Llama/Gemma: BOS/EOS on the new backend
        tokenizer.update_post_processor()


def _special_tokens_as_in(gguf_file: Path, tokenizer: Any) -> None:
    """Make ``tokenizer`` add BOS/EOS exactly where the file's metadata says llama.cpp adds
    them (``tokenizer.ggml.add_bos_token``): transformers' conversion added SmolLM2's
    ``<|im_start|>`` as a BOS to every prompt although its file says not to.

    Raises:
        ExportError: the tokenizer still disagrees with the file after the change.
    """
    from gguf import GGUFReader

    fields = GGUFReader(str(gguf_file)).fields
    flags = {}
    for name in _SPECIAL_FLAGS:
        field = fields.get(f"tokenizer.ggml.{name}")
        if field is not None:
            flags[name] = bool(field.parts[field.data[0]][0])
    for name, value in flags.items():
        if hasattr(tokenizer, name):  # Llama/Gemma tokenizers rebuild their post-processor
            setattr(tokenizer, name, value)
    wanted = flags.get("add_bos_token")

    def encode(text: str, special: bool) -> list[int]:
        return tokenizer(text, add_special_tokens=special)["input_ids"]

    prefix = special_prefix(encode)
    if wanted is not None and prefix != ((tokenizer.bos_token_id,) if wanted else ()):
        raise ExportError(
            f"{gguf_file} says add_bos_token={wanted}, but the tokenizer transformers built from "
            f"it puts {list(prefix)} before a text. Its prompts would not be encoded as "
            "llama.cpp encodes them; this tokenizer class cannot be corrected here.")
