"""Decoders with a KV cache: a Hugging Face causal LM -> an ONNX graph that takes and returns
past keys and values, fused for ONNX Runtime, checked against torch token by token.

Route: the dynamo exporter on a small wrapper that hands the graph's flat past tensors to
transformers as a ``DynamicCache`` (batch, sequence and past length dynamic), then onnxscript's
``ort_fusions`` (GroupQueryAttention with rotary embedding, SkipSimplifiedLayerNormalization).
optimum's ``text-generation-with-past`` export (TorchScript) was tried first: ``ort_fusions``
fuses nothing in it (0 patterns on SmolLM2-135M), and the unfused graph decodes at about half
the speed of a fused one with the same 4-bit kernels (STACK.md: 17 vs 9 ms per token).

The check: a real prompt's prefill and ``decode_steps`` greedy steps through torch (its own
cache) and through the exported graph (our cache loop, the runtime's): the same tokens, and
every step's logits within the export tolerance. The fused graph must pass the same check, or
the unfused one is kept and the reason recorded.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from frugalml.core.records import to_jsonable, tree_digest, write_json_atomic
from frugalml.errors import ExportError
from frugalml.export.exporters import quiet_exporter
from frugalml.export.fused_attention import attention_settings, set_attention
from frugalml.export.gguf import gguf_source
from frugalml.export.huggingface import load_model, load_tokenizer
from frugalml.export.lean_rewrites import lean_rewrites
from frugalml.export.records import RECORD_NAME, ExportedModel, OutputCheck
from frugalml.export.validate import DEFAULT_TOLERANCE, Tolerance, compare_outputs
from frugalml.runtime.backends.onnxruntime import OnnxRuntimeSession
from frugalml.runtime.generate import CopiedCache, DecoderLayout, Sampling, decode

MODEL_NAME = "model.onnx"
TOKENIZER_NAME = "tokenizer.json"  # the model's tokenizer, for the runtime's `tokenizers`
EXPORTER = "torch.onnx dynamo + KV cache"
PROMPT = ("First Citizen: Before we proceed any further, hear me speak. All: Speak, speak. "
          "First Citizen: You are all resolved rather to die than to famish?")


def past_names(layers: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Graph input and output names of the cache, layer by layer, key before value."""
    kinds = [(i, k) for i in range(layers) for k in ("key", "value")]
    return (tuple(f"past_key_values.{i}.{k}" for i, k in kinds),
            tuple(f"present.{i}.{k}" for i, k in kinds))


def layout_of(model: Any, eos_token_ids: Sequence[int]) -> DecoderLayout:
    """The cache layout of a transformers causal LM."""
    config = model.config
    heads = config.num_attention_heads
    past, present = past_names(config.num_hidden_layers)
    return DecoderLayout(
        past_inputs=past, present_outputs=present,
        kv_heads=int(getattr(config, "num_key_value_heads", None) or heads),
        head_dim=int(getattr(config, "head_dim", None) or config.hidden_size // heads),
        max_positions=int(config.max_position_embeddings), eos_token_ids=tuple(eos_token_ids))


def _wrapper(model: Any, layers: int) -> Any:
    """``forward(input_ids, attention_mask, position_ids, *past)`` -> ``(logits, *present)``."""
    import torch
    from transformers import DynamicCache

    class WithPast(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, position_ids, *past):  # type: ignore[no-untyped-def]
            cache = DynamicCache()
            for layer in range(layers):
                cache.update(past[2 * layer], past[2 * layer + 1], layer)
            out = self.model(input_ids=input_ids, attention_mask=attention_mask,
                             position_ids=position_ids, past_key_values=cache, use_cache=True)
            present = []
            for layer in out.past_key_values.layers:
                present += [layer.keys, layer.values]
            return (out.logits, *present)

    return WithPast().eval()


def _export(model: Any, layout: DecoderLayout, path: Path, opset: int) -> None:
    """Trace with batch 2, 3 new tokens after 5 cached ones: no size is 0 or 1, so none is
    specialised into the graph."""
    import torch

    batch, seq, past = 2, 3, 5
    vocab = int(model.config.vocab_size)
    args = (torch.randint(0, vocab, (batch, seq)),
            torch.ones(batch, past + seq, dtype=torch.int64),
            torch.arange(past, past + seq).expand(batch, seq).contiguous(),
            *[torch.zeros(batch, layout.kv_heads, past, layout.head_dim)
              for _ in layout.past_inputs])
    b, s, p, t = (torch.export.Dim(n) for n in ("batch", "sequence", "past", "total"))
    shapes = ({0: b, 1: s}, {0: b, 1: t}, {0: b, 1: s}, tuple({0: b, 2: p}
                                                           for _ in layout.past_inputs))

    try:
        with torch.no_grad(), quiet_exporter(), lean_rewrites():
            torch.onnx.export(
                _wrapper(model, len(layout.past_inputs) // 2), args, str(path), dynamo=True,
                dynamic_shapes=shapes, opset_version=opset, optimize=True, verbose=False,
                input_names=["input_ids", "attention_mask", "position_ids",
                             *layout.past_inputs],
                output_names=["logits", *layout.present_outputs], external_data=False)
    except Exception as e:  # torch.export raises many types; all mean "not exportable"
        raise ExportError(f"The dynamo exporter cannot export this decoder with a KV cache: "
                          f"{str(e)[:400]}") from e


def torch_greedy(model: Any, prompt: Sequence[int], steps: int) -> tuple[list[int], list[Any]]:
    """Greedy tokens and per-step last-position logits from torch with its own cache."""
    import torch

    ids, cache, tokens, logits = torch.tensor([list(prompt)]), None, [], []
    with torch.no_grad():
        for _ in range(steps):
            out = model(input_ids=ids, past_key_values=cache, use_cache=True)
            cache, row = out.past_key_values, out.logits[0, -1].numpy()
            logits.append(row)
            tokens.append(int(row.argmax()))
            ids = torch.tensor([[tokens[-1]]])
    return tokens, logits


def onnx_greedy(path: Path, layout: DecoderLayout, prompt: Sequence[int], steps: int
                ) -> tuple[list[int], list[np.ndarray]]:
    """The same through the exported graph, by the runtime's own cache loop (the cache kept
    in place when the layout says the graph allows it, as the runtime will)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = OnnxRuntimeSession(ort.InferenceSession(
        str(path), options, providers=["CPUExecutionProvider"]), None)
    logits: list[np.ndarray] = []

    def open_cache(positions: int) -> Any:
        cache = session.shared_cache(layout, positions) if layout.shared_buffer else (
            CopiedCache(session.run, layout))
        return _Recorded(cache, logits)

    no_stop = dataclasses.replace(Sampling(max_new_tokens=steps), stop_token_ids=())
    tokens = [t for t, _ in decode(open_cache, layout, prompt, no_stop)]
    return tokens, logits


class _Recorded:
    """A cache whose every step's logits are kept (for the comparison with torch)."""

    def __init__(self, cache: Any, logits: list[np.ndarray]) -> None:
        self._cache, self._logits = cache, logits

    def prefill(self, ids: Sequence[int]) -> np.ndarray:
        self._logits.append(self._cache.prefill(ids).copy())
        return self._logits[-1]

    def step(self, token: int) -> np.ndarray:
        self._logits.append(self._cache.step(token).copy())
        return self._logits[-1]


def updates_in_place(path: Path, layout: DecoderLayout) -> bool:
    """True when every present output comes from a GroupQueryAttention node, which writes
    the step's keys and values into a past buffer bound as its present (ONNX Runtime)."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    producer = {out: node.op_type for node in graph.node for out in node.output}
    return all(producer.get(name) == "GroupQueryAttention" for name in layout.present_outputs)


def check_greedy(model: Any, path: Path, layout: DecoderLayout, prompt: Sequence[int],
                 steps: int, tolerance: Tolerance) -> tuple[OutputCheck, ...]:
    """Raise unless the graph's greedy tokens equal torch's and each step's logits agree.

    Raises:
        ExportError: a token differs (naming the step) or logits exceed ``tolerance``.
    """
    want_tokens, want = torch_greedy(model, prompt, steps)
    got_tokens, got = onnx_greedy(path, layout, prompt, steps)
    if got_tokens != want_tokens:
        step = next((i for i, (a, b) in enumerate(zip(got_tokens, want_tokens, strict=False))
                     if a != b), min(len(got_tokens), len(want_tokens)))
        raise ExportError(
            f"{path.name} and torch choose different greedy tokens from step {step} of {steps} "
            f"({got_tokens[step:step + 4]} vs {want_tokens[step:step + 4]}): the cached graph "
            "does not compute what the model does.")
    return compare_outputs([{"logits": w[None]} for w in want],
                           [{"logits": g[None]} for g in got], tolerance)


def export_decoder(model_dir: Path, out_dir: Path, *, prompt: Sequence[int] | None = None,
                   decode_steps: int = 16, opset: int = 21, fuse: bool = True,
                   tolerance: Tolerance = DEFAULT_TOLERANCE) -> ExportedModel:
    """Export the causal LM in ``model_dir`` to ``out_dir/model.onnx`` with a KV cache, checked
    over a prefill of ``prompt`` (default: a line of tiny-shakespeare through the model's
    tokenizer) and ``decode_steps`` greedy steps. ``out_dir/export.json`` records it with its
    cache layout and, for a model converted from a GGUF, that file's digest (what bundling,
    scoring and the gguf backend read).

    Raises:
        ExportError: the model cannot be exported, or the graph disagrees with torch.
    """
    started = time.perf_counter()
    model = load_model(Path(model_dir), "text-generation")
    tokenizer = load_tokenizer(Path(model_dir))
    prompt = list(prompt or tokenizer(PROMPT)["input_ids"])
    eos = getattr(model.generation_config, "eos_token_id", None) or tokenizer.eos_token_id
    layout = layout_of(model, [eos] if isinstance(eos, int) else list(eos or ()))
    out_dir.mkdir(parents=True, exist_ok=True)
    if getattr(tokenizer, "backend_tokenizer", None) is not None:  # what the runtime reads
        tokenizer.backend_tokenizer.save(str(out_dir / TOKENIZER_NAME))
    gguf = gguf_source(Path(model_dir))  # the gguf backend keeps its blocks: by digest only
    plain = out_dir / "unfused.onnx"
    _export(model, layout, plain, opset)
    path, fusions, attempts, checks = out_dir / MODEL_NAME, (), [], ()
    if fuse:  # the fused graph is checked against torch; the plain one only if it is kept
        try:
            fusions = _fuse(plain, path, attention_settings(model))
            fused = dataclasses.replace(layout, shared_buffer=updates_in_place(path, layout))
            checks = check_greedy(model, path, fused, prompt, decode_steps + 1, tolerance)
            plain.unlink()
            layout = fused
        except ExportError as e:
            attempts.append(f"{EXPORTER} + ort_fusions: {e}")
            fusions = ()
    if not fusions:
        checks = check_greedy(model, plain, layout, prompt, decode_steps + 1, tolerance)
        plain.replace(path)
    record = ExportedModel(
        path=path, source=str(model_dir), source_digest=tree_digest(Path(model_dir)),
        exporter=EXPORTER + (" + ort_fusions" if fusions else ""), opset=opset,
        input_names=("input_ids", "attention_mask", "position_ids", *layout.past_inputs),
        output_names=("logits", *layout.present_outputs), checks=checks,
        inputs_used=decode_steps + 1, attempts=tuple(attempts), fusions=fusions,
        size_bytes=path.stat().st_size, seconds=round(time.perf_counter() - started, 3),
        decoder=to_jsonable(layout), gguf_sha256=gguf["sha256"] if gguf else None)
    write_json_atomic(out_dir / RECORD_NAME, record.to_dict())
    return record


def _fuse(plain: Path, fused: Path, attention: list[dict[str, float | int]]
          ) -> tuple[str, ...]:
    """onnxscript's ``ort_fusions`` on the cached graph, its attention told the model's scale
    and windows (:mod:`frugalml.export.fused_attention`); the fusions it made.

    Raises:
        ExportError: nothing fused, or the rewriter failed.
    """
    import onnx_ir as ir
    from onnxscript.rewriter.ort_fusions import optimize_for_ort

    try:
        with lean_rewrites():
            model, counts = optimize_for_ort(ir.load(str(plain)))
    except Exception as e:  # the rewriter raises its own types on graphs it cannot handle
        raise ExportError(f"onnxscript ort_fusions failed: {str(e)[:300]}") from e
    made = {name: n for name, n in counts.items() if n}
    if "gqa" not in made and "mha" not in made:
        raise ExportError("ort_fusions fused no attention in the cached graph "
                          f"({', '.join(made) or 'nothing'}): the unfused graph is kept.")
    set_attention(model, attention)
    ir.save(model, str(fused))
    return tuple(f"{name} x{n}" for name, n in made.items())
