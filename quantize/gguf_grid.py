"""A GGUF's own quantized weights in the ONNX graph, bit for bit: backend ``gguf``.

A llama.cpp file already holds 4- and 8-bit weights on its own grid; re-rounding them to
another grid costs what the file's author saved (SmolLM2-135M Q4_1: perplexity 61.6 in
FP32, 62.0 on the file's grid in llama.cpp, 74-95 after any re-rounding; STACK.md). So every
constant MatMul weight of the export whose values are exactly a GGUF tensor's dequantized
rows takes that tensor's blocks as they are:

- symmetric blocks, ``d * (q - zero)``: ``Q4_0`` (4-bit codes, zero 8), ``Q8_0`` (8-bit, zero
  128; both the op's default zero point, not stored), ``Q5_0`` (5-bit codes as 8-bit, zero
  16) and ``Q6_K`` (6-bit codes as 8-bit in blocks of 16, zero 32, the scale per 16 being
  the super-block's float16 times its int8 sub-block scale): ``MatMulNBits`` with those
  scales and zero points. Exact.
- offset blocks, ``d * q + m``: ``Q4_1``, ``Q4_K`` (4-bit), ``Q5_1``, ``Q5_K`` (5-bit codes as
  8-bit), per 32 values. ``MatMulNBits`` cannot say ``m`` with its integer zero points (``-m /
  d`` is no integer), and with float zero points ONNX Runtime 1.32 falls back to a kernel 42x
  slower (1.5 ms instead of 36 us for a 576 x 1536 layer). Written instead as ``d * (q -
  zero)`` in ``MatMulNBits`` (zero: the middle of the codes) plus ``(zero d + m)`` times each
  block's input sum (a ReduceSum and a small float MatMul): the same weights, exactly.
- The token embedding (a ``Gather`` of an 8-bit-coded table: Q8_0, Q5_0, Q6_K):
  ``GatherBlockQuantized`` 8 bits with the table's zero point, its codes laid out as
  ``MatMulNBits`` reads them, so a tied output layer reads the same initializer: the table is
  stored once (SmolLM2's is a fifth of its file, Gemma 3 270M's 63 % of its weights).

Every type is read and decoded by :mod:`frugalml.quantize._gguf_blocks`, tested bit for bit
against gguf's own dequantization. Rows are matched by content (the export came from this file
dequantized), so llama.cpp's row order for attention (permuted for its rotary layout) needs no
knowledge of the model. Other block types (Q2_K, Q3_K, the IQ types) and F16/BF16 tensors are
left as the export has them, and the record says which.

Storage: an offset table is kept as the file's float16 ``m`` and the table's scales as
float16 where that is exact, widened by ONNX Runtime when it loads the model
(:mod:`._halves`): SmolLM2-135M's Q4_1 model 116.7 -> 108.4 MB (the file: 98.4 MB), the
same logits.

Activations: int8 per block inside the kernels (``accuracy_level`` 4): the A8 of W4A8.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from frugalml.core.records import write_json_atomic
from frugalml.errors import QuantizationError
from frugalml.export.gguf import gguf_file
from frugalml.export.model_info import recorded
from frugalml.quantize._gguf_blocks import KINDS, Blocks, decode, read
from frugalml.quantize._gguf_nodes import rewrite
from frugalml.quantize._graph import summarize, untie_transposed_matmuls
from frugalml.quantize._halves import store_halves
from frugalml.quantize._merge import merge_sibling_matmulnbits
from frugalml.quantize._protocol import CalibrationData
from frugalml.quantize.recipe import Precision, Recipe
from frugalml.quantize.records import QuantizedModel
from frugalml.targets.profiles import Target

REPORT_NAME = "gguf_grid.json"     # beside the model written: which weights kept their blocks


def source_gguf(model: Path) -> Path:
    """The GGUF file an export came from: its stage record names it by sha256, found where
    this machine's GGUF cache last saw it (:func:`frugalml.export.gguf.gguf_file`).

    Raises:
        QuantizationError: the model did not come from a GGUF, or no file with that content
            is where this machine saw it.
    """
    sha256 = recorded(model).gguf_sha256
    if sha256 is None:
        raise QuantizationError(
            f"{model} did not come from a GGUF file (its export record names none): the gguf "
            "backend keeps a llama.cpp file's own 4- and 8-bit weights. Export the .gguf, or "
            "use --backend onnxruntime or nncf.")
    path = gguf_file(sha256)
    if path is None:
        raise QuantizationError(
            f"The GGUF file this model came from (sha256 {sha256[:16]}...) is not where this "
            "machine last saw it, or has changed; the gguf backend reads its quantized blocks. "
            "Export the .gguf again from where it is now.")
    return path


def _row_keys(rows: np.ndarray) -> list[bytes]:
    return [r.tobytes() for r in np.ascontiguousarray(rows, dtype=np.float32)]


def read_tensors(gguf_file: Path) -> list[tuple[str, str, Blocks, np.ndarray]]:
    """(name, kind, blocks, decoded rows) of every 2-D tensor in the file of a block type
    kept as it is (:data:`~frugalml.quantize._gguf_blocks.KINDS`)."""
    from gguf import GGUFReader

    found = []
    for tensor in GGUFReader(str(gguf_file)).tensors:
        kind = tensor.tensor_type.name
        if kind in KINDS and tensor.data.ndim == 2:
            blocks = read(kind, np.asarray(tensor.data))
            found.append((tensor.name, kind, blocks, decode(blocks)))
    return found


def _match(rows: np.ndarray, tensors: list[Any]) -> tuple[Any, np.ndarray] | None:
    """The GGUF tensor whose decoded rows are exactly ``rows`` (in some order), and for each
    of ``rows`` the index of its GGUF row."""
    keys = _row_keys(rows)
    for tensor in tensors:
        decoded = tensor[3]
        if decoded.shape != rows.shape:
            continue
        index = {k: i for i, k in enumerate(_row_keys(decoded))}
        order = [index.get(k) for k in keys]
        if all(i is not None for i in order):
            return tensor, np.asarray(order)
    return None


class GgufGridQuantizer:
    """W4A8 that keeps a GGUF file's own grid; see the module docstring."""

    name = "gguf"
    formats = ("onnx",)

    def quantize(self, model: Path, data: CalibrationData, recipe: Recipe, target: Target,
                 out: Path, *, source_digest: str, structure: str) -> QuantizedModel:
        """Write ``out`` from the export ``model`` and the GGUF it came from (a decoder:
        ``structure`` chooses nothing here).

        Raises:
            QuantizationError: a recipe other than W4A8, no GGUF source, or no weight of the
                export is on its grid.
        """
        import onnx

        if recipe.precision is not Precision.W4A8:
            raise QuantizationError(
                f"The gguf backend keeps a GGUF file's own 4- and 8-bit blocks, which is "
                f"W4A8; the recipe is {recipe.precision.value}. Use --recipe w4a8, or "
                "--backend onnxruntime or nncf for other recipes.")
        started = time.perf_counter()
        graph = onnx.load(str(model))
        untie_transposed_matmuls(graph)  # a tied output layer: a MatMul reading the table
        gguf = source_gguf(model)  # verified against its digest once, read once
        kept = rewrite(graph.graph, read_tensors(gguf), _match)
        if not kept["transcoded"]:
            raise QuantizationError(
                f"No MatMul weight of {model} is exactly a {'/'.join(KINDS)} tensor of "
                f"{gguf.name}: the export did not come from this file's weights.")
        kept["merged_siblings"] = merge_sibling_matmulnbits(graph.graph)
        kept["float16_storage"] = store_halves(graph.graph)
        onnx.save(graph, str(out))
        write_json_atomic(out.parent / REPORT_NAME, {
            "gguf": gguf.name, "gguf_sha256": recorded(model).gguf_sha256, **kept})
        return QuantizedModel(
            path=out, backend=self.name, precision="w4a8", format="onnx",
            int8_format=target.int8_format.value, source_digest=source_digest,
            calibration_fingerprint=data.fingerprint,
            recipe=recipe.to_dict(), activations=(
                "dynamic int8 in MatMulNBits (accuracy_level 4); the GGUF's own weight grid"),
            seconds=round(time.perf_counter() - started, 2), size_bytes=out.stat().st_size,
            **summarize(graph))
