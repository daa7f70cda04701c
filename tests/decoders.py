"""A tiny random Llama (2 layers, grouped-query attention) with a byte-level BPE tokenizer
trained on tiny-shakespeare: a real decoder architecture that exports in seconds, for tests of
the KV-cache path that need no model hub."""

from __future__ import annotations

from pathlib import Path

from bench._data import tiny_shakespeare

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


def tiny_gemma3(dest: Path, *, window: int = 8, seed: int = 0, query_scalar: int = 32,
                context: int = 128, vocab: int | None = None) -> Path:
    """A tiny Gemma 3 (5 sliding-window layers of 6, QK-norm, one KV head, tied embedding,
    per-layer rotary bases, a query scale that is not 1/sqrt(head size)) with the tiny
    Llama's tokenizer; ``window`` is far shorter than the export check's prompt (67 tokens),
    so the check runs past it."""
    import torch
    from transformers import AutoTokenizer, Gemma3ForCausalLM, Gemma3TextConfig

    source = tiny_llama(dest.with_name(dest.name + "-tokenizer"))
    tokenizer = AutoTokenizer.from_pretrained(source)
    config = Gemma3TextConfig(
        vocab_size=vocab or len(tokenizer), hidden_size=64, intermediate_size=128,
        num_hidden_layers=6,
        num_attention_heads=4, num_key_value_heads=1, head_dim=16, sliding_window=window,
        query_pre_attn_scalar=query_scalar, max_position_embeddings=context, rope_theta=1e6,
        rope_local_base_freq=1e4, eos_token_id=tokenizer.eos_token_id, bos_token_id=None,
        pad_token_id=tokenizer.eos_token_id, tie_word_embeddings=True)
    torch.manual_seed(seed)
    model = Gemma3ForCausalLM(config).eval()
    with torch.no_grad():  # sharper logits, so greedy choices are clear-cut
        model.model.embed_tokens.weight.mul_(8.0)
    model.save_pretrained(dest, safe_serialization=True)
    tokenizer.save_pretrained(dest)
    return dest


def tiny_llama_gguf(dest: Path, *, weights: str = "Q4_0", seed: int = 0) -> Path:
    """The tiny Llama written as llama.cpp writes a GGUF (``dest``, a ``.gguf`` file): its
    tensors under llama.cpp's names, the attention's query/key rows in llama.cpp's rotary
    order, 2-D weights in ``weights`` blocks (norms in F32, as the converter keeps them), and
    its byte-level BPE vocabulary and merges as a ``gpt2`` tokenizer, so transformers reads it
    back as it reads SmolLM2's file."""
    import json

    import gguf
    import numpy as np
    import torch
    from gguf.quants import quantize

    source = tiny_llama(dest.with_name(dest.stem + "-hf"), seed=seed)
    config = json.loads((source / "config.json").read_text())
    vocab = json.loads((source / "tokenizer.json").read_text())["model"]
    from safetensors.torch import load_file

    tensors = load_file(source / "model.safetensors")
    heads, kv_heads = config["num_attention_heads"], config["num_key_value_heads"]
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, config["num_hidden_layers"])
    writer = _gguf_writer(dest, "llama", config)
    writer.add_rope_dimension_count(config["hidden_size"] // heads)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_layer_norm_rms_eps(config["rms_norm_eps"])
    writer.add_rope_freq_base(config.get("rope_theta", 10000.0))
    tokens = sorted(vocab["vocab"], key=vocab["vocab"].get)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("gpt2")
    writer.add_token_list(tokens)
    writer.add_token_types([gguf.TokenType.CONTROL if t == EOS else gguf.TokenType.NORMAL
                            for t in tokens])
    writer.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in vocab["merges"]])
    writer.add_eos_token_id(vocab["vocab"][EOS])
    writer.add_bos_token_id(vocab["vocab"][EOS])  # transformers' reader needs one; never added
    writer.add_add_bos_token(False)
    for name, tensor in tensors.items():
        w = tensor.to(torch.float32).numpy()
        if name.endswith(("q_proj.weight", "k_proj.weight")):  # llama.cpp's rotary row order
            n = heads if "q_proj" in name else kv_heads
            w = w.reshape(n, 2, w.shape[0] // n // 2, *w.shape[1:]).swapaxes(1, 2).reshape(
                w.shape)
        gguf_name = names.get_name(name.removesuffix(".weight")) + ".weight"
        if w.ndim == 2:
            qtype = gguf.GGMLQuantizationType[weights]
            blocks = quantize(np.ascontiguousarray(w), qtype)
            writer.add_tensor(gguf_name, blocks, raw_shape=blocks.shape, raw_dtype=qtype)
        else:
            writer.add_tensor(gguf_name, np.ascontiguousarray(w))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return dest


def tiny_bert(dest: Path, *, seed: int = 0) -> Path:
    """A tiny random BERT encoder (2 layers, 4 heads of 16) with all-MiniLM-L6-v2's WordPiece
    tokenizer: the attention, layer norm and GELU patterns ONNX Runtime's fusions look for, in
    a graph that exports and fuses in seconds."""
    import shutil

    import torch
    from transformers import BertConfig, BertModel

    from frugalml.demo import default_model_dir

    source = default_model_dir()
    config = BertConfig(vocab_size=30522, hidden_size=64, intermediate_size=128,
                        num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=128)
    torch.manual_seed(seed)
    BertModel(config).eval().save_pretrained(dest, safe_serialization=True)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                 "vocab.txt"):
        shutil.copy(source / name, dest / name)
    return dest


def _gguf_writer(dest: Path, arch: str, config: dict) -> object:
    """gguf's writer for ``dest`` with the sizes every architecture records."""
    import gguf

    writer = gguf.GGUFWriter(str(dest), arch)
    writer.add_name(f"tiny-{arch}")
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_feed_forward_length(config["intermediate_size"])
    return writer


def spm_vocabulary(dest: Path, *, size: int = 600) -> Path:
    """A sentencepiece BPE model trained on tiny-shakespeare as Gemma's is set up (byte
    fallback, Gemma's special pieces at ids 0-3, no dummy space prefix), written to ``dest``."""
    import io

    import sentencepiece

    text = tiny_shakespeare().read_text(encoding="utf-8")[:200_000]
    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(text.splitlines()), model_writer=model, model_type="bpe",
        vocab_size=size, byte_fallback=True, character_coverage=1.0, add_dummy_prefix=False,
        normalization_rule_name="identity", remove_extra_whitespaces=False,
        pad_id=0, eos_id=1, bos_id=2, unk_id=3, pad_piece="<pad>", eos_piece="<eos>",
        bos_piece="<bos>", unk_piece="<unk>", minloglevel=2)
    dest.write_bytes(model.getvalue())
    return dest


def tiny_gemma3_gguf(dest: Path, *, window: int = 8, seed: int = 0) -> Path:
    """The tiny Gemma 3 written as llama.cpp's converter writes a ``gemma3`` GGUF (``dest``):
    llama.cpp's tensor names, no rotary row reordering (only Llama-family files have it), RMS
    norm weights stored with Gemma's +1 folded in, no output table (tied), 2-D weights in F32,
    and the vocabulary of :func:`spm_vocabulary` (saved beside it as ``<stem>.spm.model``) as
    pieces, scores and types, BOS added. The query scale is Gemma 3's default
    (``query_pre_attn_scalar`` 256: a GGUF does not carry it)."""
    import json

    import gguf
    import numpy as np
    from safetensors.torch import load_file
    from sentencepiece import sentencepiece_model_pb2

    vocabulary = sentencepiece_model_pb2.ModelProto()
    vocabulary.ParseFromString(spm_vocabulary(dest.with_suffix(".spm.model")).read_bytes())
    pieces = vocabulary.pieces
    source = tiny_gemma3(dest.with_name(dest.stem + "-hf"), window=window, seed=seed,
                         query_scalar=256, vocab=len(pieces))
    config = json.loads((source / "config.json").read_text())
    tensors = load_file(source / "model.safetensors")
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.GEMMA3, config["num_hidden_layers"])
    writer = _gguf_writer(dest, "gemma3", config)
    writer.add_head_count(config["num_attention_heads"])
    writer.add_head_count_kv(config["num_key_value_heads"])
    writer.add_key_length(config["head_dim"])
    writer.add_value_length(config["head_dim"])
    writer.add_layer_norm_rms_eps(config["rms_norm_eps"])
    writer.add_rope_freq_base(config["rope_theta"])
    writer.add_sliding_window(config["sliding_window"])
    writer.add_tokenizer_model("llama")
    writer.add_tokenizer_pre("default")
    writer.add_token_list([p.piece for p in pieces])
    writer.add_token_scores([p.score for p in pieces])
    writer.add_token_types([p.type for p in pieces])  # sentencepiece's numbering, as gguf's
    writer.add_pad_token_id(0)
    writer.add_eos_token_id(1)
    writer.add_bos_token_id(2)
    writer.add_unk_token_id(3)
    writer.add_add_bos_token(True)
    writer.add_add_space_prefix(False)
    for name, tensor in tensors.items():
        w = tensor.float().numpy()
        if name.endswith("norm.weight"):
            w = w + 1.0  # llama.cpp's Gemma converter folds the (1 + w) of Gemma's RMSNorm
        gguf_name = names.get_name(name.removesuffix(".weight")) + ".weight"
        writer.add_tensor(gguf_name, np.ascontiguousarray(w, np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return dest
