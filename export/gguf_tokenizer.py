"""The tokenizer of a GGUF whose vocabulary is sentencepiece's BPE (``tokenizer.ggml.model`` =
``llama``: Llama 2, Gemma, Mistral ...), rebuilt as llama.cpp tokenizes it.

llama.cpp splits the text into characters (spaces written ``▁``, one prepended when the file
says ``add_space_prefix``) and repeatedly merges the adjacent pair whose concatenation is the
highest-scoring piece of the vocabulary; a character outside it becomes its UTF-8 byte pieces
``<0xNN>``. That is a BPE whose merges are ranked by the merged piece's score, which is what
:func:`spm_bpe` writes for ``tokenizers``. Transformers' GGUF conversion reads the same
vocabulary as a Unigram model (Viterbi over the scores), which splits text into far more
pieces: a tiny Gemma 3 vocabulary trained by sentencepiece gave 116 tokens for the export
check's prompt where sentencepiece (and llama.cpp) give 67, so a model scored or run on it sees
sequences it never saw in training.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# sentencepiece's (and gguf's) token types
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6
SPACE = "▁"


def spm_bpe(tokens: Sequence[str], scores: Sequence[float], types: Sequence[int], *,
            add_space_prefix: bool, unk_id: int | None) -> Any:
    """A ``tokenizers.Tokenizer`` that encodes as llama.cpp's SPM tokenizer does.

    Merges: every split of a normal piece into two pieces of the vocabulary, ranked by the
    merged piece's score (ties by its id, as sentencepiece orders them); byte fallback to
    ``<0xNN>`` pieces; control, unknown and user-defined pieces are never produced by merging.
    """
    from tokenizers import Tokenizer, decoders, normalizers
    from tokenizers.models import BPE

    vocab = {piece: i for i, piece in enumerate(tokens)}
    mergeable = [i for i, kind in enumerate(types) if kind == NORMAL]
    merges = []
    for i in sorted(mergeable, key=lambda i: (-scores[i], i)):
        piece = tokens[i]
        for cut in range(1, len(piece)):
            left, right = piece[:cut], piece[cut:]
            if left in vocab and right in vocab:
                merges.append((left, right))
    bpe = BPE(vocab=vocab, merges=merges, byte_fallback=True, fuse_unk=True,
              unk_token=tokens[unk_id] if unk_id is not None else None)
    tokenizer = Tokenizer(bpe)
    steps = [normalizers.Prepend(SPACE)] if add_space_prefix else []
    tokenizer.normalizer = normalizers.Sequence([*steps, normalizers.Replace(" ", SPACE)])
    tokenizer.decoder = decoders.Sequence([
        decoders.Replace(SPACE, " "), decoders.ByteFallback(), decoders.Fuse(),
        *([decoders.Strip(content=" ", left=1)] if add_space_prefix else [])])
    tokenizer.add_special_tokens([tokens[i] for i, kind in enumerate(types)
                                  if kind in (CONTROL, USER_DEFINED)])
    return tokenizer


def gguf_spm(fields: Any) -> tuple[Any, dict[str, str]] | None:
    """:func:`spm_bpe` from a ``gguf.GGUFReader``'s fields and the file's special pieces
    (``{"bos_token": "<bos>", ...}``), or None when the file's vocabulary is not
    sentencepiece's (``tokenizer.ggml.model`` other than ``llama``)."""
    def value(name: str, default: Any = None) -> Any:
        field = fields.get(f"tokenizer.ggml.{name}")
        return default if field is None else field.contents()

    if value("model") != "llama":
        return None
    tokens = value("tokens")
    specials = {f"{role}_token": tokens[value(f"{key}_token_id")]
                for role, key in (("bos", "bos"), ("eos", "eos"), ("unk", "unknown"),
                                  ("pad", "padding"))
                if value(f"{key}_token_id") is not None}
    return spm_bpe(tokens, value("scores", [0.0] * len(tokens)),
                   value("token_type", [NORMAL] * len(tokens)),
                   add_space_prefix=bool(value("add_space_prefix", True)),
                   unk_id=value("unknown_token_id")), specials
