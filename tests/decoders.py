"""A tiny random Llama (2 layers, grouped-query attention) with a byte-level BPE tokenizer
trained on tiny-shakespeare: a real decoder architecture that exports in seconds, for tests of
the KV-cache path that need no model hub."""

from __future__ import annotations

from pathlib import Path

from tests.realdata import tiny_shakespeare

EOS = "<|endoftext|>"


def tiny_llama(dest: Path, *, vocab: int = 512, seed: int = 0, tied: bool = False) -> Path:
    """Write a Hugging Face model directory at ``dest`` and return it. ``tied``: the output
    layer shares the embedding table (as SmolLM2's does); its logits are then less sharp
    and it tends to repeat itself, so the untied one serves the generation tests."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    text = tiny_shakespeare().read_text(encoding="utf-8")[:200_000]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(text.splitlines(), trainers.BpeTrainer(
        vocab_size=vocab, special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token=EOS)
    config = LlamaConfig(vocab_size=bpe.get_vocab_size(), hidden_size=64,
                         intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, max_position_embeddings=128,
                         eos_token_id=bpe.token_to_id(EOS), bos_token_id=None,
                         tie_word_embeddings=tied)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():  # sharper logits than the init's, so greedy choices are clear-cut
        model.lm_head.weight.mul_(8.0 if tied else 20.0)
    model.save_pretrained(dest, safe_serialization=True)
    tokenizer.save_pretrained(dest)
    return dest


def tiny_gemma3(dest: Path, *, window: int = 8, seed: int = 0) -> Path:
    """A tiny Gemma 3 (5 sliding-window layers of 6, QK-norm, one KV head, tied embedding,
    per-layer rotary bases, a query scale that is not 1/sqrt(head size)) with the tiny
    Llama's tokenizer; ``window`` is far shorter than the export check's prompt (67 tokens),
    so the check runs past it."""
    import torch
    from transformers import AutoTokenizer, Gemma3ForCausalLM, Gemma3TextConfig

    source = tiny_llama(dest.with_name(dest.name + "-tokenizer"))
    tokenizer = AutoTokenizer.from_pretrained(source)
    config = Gemma3TextConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=6,
        num_attention_heads=4, num_key_value_heads=1, head_dim=16, sliding_window=window,
        query_pre_attn_scalar=32, max_position_embeddings=128, rope_theta=1e6,
        rope_local_base_freq=1e4, eos_token_id=tokenizer.eos_token_id, bos_token_id=None,
        pad_token_id=tokenizer.eos_token_id, tie_word_embeddings=True)
    torch.manual_seed(seed)
    model = Gemma3ForCausalLM(config).eval()
    with torch.no_grad():  # sharper logits, so greedy choices are clear-cut
        model.model.embed_tokens.weight.mul_(8.0)
    model.save_pretrained(dest, safe_serialization=True)
    tokenizer.save_pretrained(dest)
    return dest
