"""One encoding for a decoder's text: the runtime's prompts and the scored token windows take
the tokens before a text from the tokenizer's own post-processor (Gemma 3 scored against
windows without its BOS read a perplexity of 2,051 where it scores 73 with it)."""

from __future__ import annotations

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers, processors

from frugalml.runtime.prompt import encode_prompt, special_prefix, tokenizers_encode

VOCAB = {"<unk>": 0, "<s>": 1, "</s>": 2, "to": 3, "be": 4, "or": 5, "not": 6, "a": 7}


def _tokenizer(single: str | None) -> Tokenizer:
    tokenizer = Tokenizer(models.WordLevel(VOCAB, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    if single is not None:
        tokenizer.post_processor = processors.TemplateProcessing(
            single=single, special_tokens=[("<s>", 1), ("</s>", 2)])
    return tokenizer


@pytest.mark.parametrize(("single", "prefix", "prompt"), [
    (None, (), [3, 4, 5, 6, 3, 4]),
    ("<s> $A", (1,), [1, 3, 4, 5, 6, 3, 4]),
    ("<s> $A </s>", (1,), [1, 3, 4, 5, 6, 3, 4]),  # the EOS after a prompt is left off
    ("$A </s>", (), [3, 4, 5, 6, 3, 4]),
])
def test_the_prefix_is_what_the_post_processor_puts_before_a_text(
        single: str | None, prefix: tuple[int, ...], prompt: list[int]) -> None:
    tokenizer = _tokenizer(single)
    assert special_prefix(tokenizers_encode(tokenizer)) == prefix
    assert encode_prompt(tokenizer, "to be or not to be") == prompt


def test_a_post_processor_that_rewrites_the_text_is_refused() -> None:
    def rewriting(text: str, special: bool) -> list[int]:
        return [1, 9] if special else [7]

    with pytest.raises(ValueError, match="change the text's own tokens"):
        special_prefix(rewriting)
