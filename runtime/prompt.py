"""How text becomes a decoder's token ids: one encoding for prompts, scoring and calibration.

A decoder is only measured on the inputs it will be given if its evaluation windows are
encoded exactly as the runtime encodes a prompt. The tokenizer's post-processor decides the
special tokens (Llama and Gemma put a BOS first, SmolLM2 puts none), and Gemma 3 without its
BOS scored a perplexity of 2,051 where it scores 73 with it: so both the runtime's prompts and
the token windows (:mod:`frugalml.calibration.windows`) take the tokens before the text from
:func:`special_prefix`, never their own choice. Tokens the post-processor puts after a text (an
end-of-sequence) are left off a prompt: a prompt is to be continued, not ended.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

# Encodes text with (True) or without (False) the tokenizer's special tokens.
Encode = Callable[[str, bool], Sequence[int]]
_PROBE = "a"  # any text the vocabulary holds: the special tokens are what surrounds it


def special_prefix(encode: Encode) -> tuple[int, ...]:
    """The ids the tokenizer puts before every text (e.g. ``(bos_id,)``, or ``()``).

    Raises:
        ValueError: the tokenizer's encoding with special tokens does not contain its encoding
            without them (a post-processor that rewrites the text's own tokens).
    """
    plain, full = list(encode(_PROBE, False)), list(encode(_PROBE, True))
    for start in range(len(full) - len(plain) + 1):
        if full[start:start + len(plain)] == plain:
            return tuple(int(i) for i in full[:start])
    raise ValueError(f"The tokenizer's special tokens change the text's own tokens ({plain} "
                     f"without them, {full} with them); a prompt cannot be encoded as scored.")


def tokenizers_encode(tokenizer: object) -> Encode:
    """:data:`Encode` for a ``tokenizers.Tokenizer`` (what a bundle carries); the padding a
    ``tokenizer.json`` may ask for (MiniLM's pads every text to 128) is left off."""
    def encode(text: str, special: bool) -> Sequence[int]:
        found = tokenizer.encode(text, add_special_tokens=special)  # type: ignore[attr-defined]
        return [i for i, kept in zip(found.ids, found.attention_mask, strict=True) if kept]

    return encode


def encode_prompt(tokenizer: object, text: str) -> list[int]:
    """``text`` as the decoder is given it: the special prefix, then the text's tokens."""
    encode = tokenizers_encode(tokenizer)
    return [*special_prefix(encode), *encode(text, False)]
