"""A decoder's KV cache kept in place in ONNX Runtime: one preallocated buffer per layer,
bound as both the past input and the present output of the graph.

ONNX Runtime's GroupQueryAttention writes a step's keys and values into its past tensors when
the present output is the same memory (what onnxruntime-genai calls past-present buffer
sharing), attending over the positions the attention mask counts. The cache then is never
copied: a plain ``run`` hands the whole cache back as new arrays every step and takes it in
again. Measured on SmolLM2-135M, 1 thread, Zen 4 (64 steps after 128 tokens): W4A8 decode
1.15-1.18x tokens/s, the GGUF grid 1.06-1.09x, FP32 1.04x; logits identical.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from frugalml.errors import BundleError, one_line


class SharedCache:
    """One generation's cache (batch 1) with room for ``positions`` tokens; see the module
    docstring. Not shared between threads: each generation opens its own."""

    def __init__(self, session: Any, layout: Any, positions: int) -> None:
        import onnxruntime as ort

        self._session = session
        self._binding = session.io_binding()
        self._binding.bind_output("logits", "cpu")  # first bound: get_outputs()[0]
        shape = (1, layout.kv_heads, positions, layout.head_dim)
        self._buffers = []
        for past, present in zip(layout.past_inputs, layout.present_outputs, strict=True):
            buffer = ort.OrtValue.ortvalue_from_numpy(np.zeros(shape, dtype=layout.kv_dtype))
            self._binding.bind_ortvalue_input(past, buffer)
            self._binding.bind_ortvalue_output(present, buffer)
            self._buffers.append(buffer)
        self._done = 0

    def prefill(self, ids: Sequence[int]) -> np.ndarray:
        """Run the prompt into the empty cache; the last position's logits."""
        return self._run(np.asarray([ids], dtype=np.int64))

    def step(self, token: int) -> np.ndarray:
        """Run one token after everything so far; its logits."""
        return self._run(np.asarray([[token]], dtype=np.int64))

    def _run(self, ids: np.ndarray) -> np.ndarray:
        new = ids.shape[1]
        mask = np.ones((1, self._done + new), dtype=np.int64)
        positions = np.arange(self._done, self._done + new, dtype=np.int64)[None]
        for name, value in (("input_ids", ids), ("attention_mask", mask),
                            ("position_ids", positions)):
            self._binding.bind_cpu_input(name, value)
        self._binding.bind_output("logits", "cpu")  # freshly sized (rebinding keeps index 0)
        try:
            self._session.run_with_iobinding(self._binding)
        except Exception as e:  # ORT raises untyped errors, e.g. a present of another shape
            raise BundleError(
                f"The decoder's graph did not update its cache in place ({one_line(e, 300)}); "
                "its manifest says it does (generation.shared_buffer). Rebuild the bundle "
                "from a fresh `frugal export --task text-generation-with-past`.") from e
        self._done += new
        logits: np.ndarray = self._binding.get_outputs()[0].numpy()[0, -1]
        return logits
