"""Dynamic INT8 through ONNX Runtime: weights per channel ahead of time, activations per call.

No calibration: each MatMul's input is quantized at run time from its own range
(``DynamicQuantizeLinear`` -> ``MatMulInteger``), so nothing can be mis-calibrated, at the cost
of finding the range on every call. Measured on all-MiniLM-L6-v2 on an AMD family 25 (Zen 3,
AVX2) host, candidates interleaved: per-channel weights ran 1.7-1.8x FP32 at batch 1 with a
mean embedding cosine of 0.9908; per-tensor weights (ONNX Runtime's default) gave 0.957.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

import numpy as np

from frugalml.errors import QuantizationError
from frugalml.quantize._attention import MS_DOMAIN, prepare_attention
from frugalml.quantize._protocol import CalibrationData
from frugalml.quantize.recipe import Recipe
from frugalml.targets.profiles import QuantFormat, Target

# ONNX Runtime's dynamic kernels exist for these; Conv would become slow ConvInteger.
# LSTM: ONNX Runtime quantizes its weights (DynamicQuantizeLSTM); it has no integer GRU.
DYNAMIC_OPS = ("MatMul", "Gemm", "LSTM")


def quantize_dynamic_int8(pre: Path, out: Path, recipe: Recipe, target: Target,
                          data: CalibrationData) -> Any:
    """Write ``out`` from the prepared FP32 model ``pre`` and return it (``onnx.ModelProto``).

    7-bit weights (``reduce_range``) on x86 without VNNI, whose ``vpmaddubsw`` saturates at
    full 8-bit weights, as static INT8 does. A fused graph's Attention nodes become QAttention
    where :func:`~frugalml.quantize._attention.prepare_attention` can rewrite them exactly
    (checked on a calibration batch); the others stay in float.

    Raises:
        QuantizationError: ONNX Runtime fails, or the Attention rewrite changed the outputs.
    """
    import onnx
    from onnxruntime import quantization as q

    op_types, excluded = list(recipe.op_types or DYNAMIC_OPS), list(recipe.float_nodes)
    refused = _prepare_attention(pre, data)
    if refused is not None:
        op_types, excluded = [*op_types, "Attention"], [*excluded, *refused]
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            q.quantize_dynamic(
                str(pre), str(out), op_types_to_quantize=op_types,
                per_channel=recipe.per_channel, weight_type=q.QuantType.QInt8,
                reduce_range=target.int8_format is QuantFormat.U8S8_REDUCED,
                nodes_to_exclude=excluded,
                extra_options={"MatMulConstBOnly": True})  # attention (act x act) stays float
    except Exception as e:  # ORT raises untyped errors from its quantizer
        raise QuantizationError(f"ONNX Runtime dynamic quantization failed: {e}") from e
    return onnx.load(str(out))


def _prepare_attention(pre: Path, data: CalibrationData) -> list[str] | None:
    """Rewrite ``pre``'s fused Attention nodes for QAttention in place; None when it has none,
    else the nodes left in float. The rewritten graph must give the same outputs as ``pre``
    on a calibration batch (padded texts exercise the mask).

    Raises:
        QuantizationError: the rewrite changed the outputs.
    """
    import onnx

    model = onnx.load(str(pre))
    if not any(n.domain == MS_DOMAIN and n.op_type == "Attention" for n in model.graph.node):
        return None
    ready, refused = prepare_attention(model)
    if not ready:
        return list(refused)
    feeds = next(data.batches("calibration", batch_size=8))[0]
    before = _run(pre.read_bytes(), feeds)
    after = _run(model.SerializeToString(), feeds)
    for name, want in before.items():
        if not np.allclose(after[name], want, rtol=1e-4, atol=1e-4):
            worst = float(np.max(np.abs(after[name] - want)))
            raise QuantizationError(
                f"Preparing the fused Attention nodes for QAttention changed output {name} "
                f"(max abs difference {worst:.3g}) on a calibration batch: this graph's "
                "attention bias is not a plain padding mask. Quantize the unfused export "
                "(candidate int8-dynamic) instead.")
    onnx.save(model, str(pre))
    return list(refused)


def _run(model: bytes, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds), strict=True))
