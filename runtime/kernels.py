"""Which operator types are quantized kernels and which are float compute (ONNX Runtime names).

Shared by the build (counting kernels after ORT's fusions) and the profiler (timing them), so
"ran in int8" means the same thing in a manifest and in a benchmark report.
"""

from __future__ import annotations

INT8_KERNELS = frozenset({
    "QLinearMatMul", "MatMulIntegerToFloat", "MatMulInteger", "QGemm", "QLinearConv",
    "ConvInteger", "DynamicQuantizeMatMul", "QAttention", "MatMulNBits", "DynamicQuantizeLSTM",
})
# Recurrent cells count as compute: a GRU, which ONNX Runtime has no integer kernel for, shows
# as float where a streaming model's time goes.
FLOAT_KERNELS = frozenset({"MatMul", "Gemm", "FusedMatMul", "FusedGemm", "Conv", "FusedConv",
                           "LSTM", "GRU", "RNN"})


def kernel_class(op_type: str, exec_type: str = "") -> str:
    """``"quantized"``, ``"float"`` or ``"other"`` for one executed node.

    OpenVINO reports the kernel's precision in ``exec_type`` (``brgemm_avx2_I8``,
    ``jit_avx2_FP32``); ONNX Runtime's op type already says it (``MatMulIntegerToFloat``).
    """
    precision = exec_type.rsplit("_", 1)[-1].upper() if exec_type else ""
    if op_type in INT8_KERNELS or precision in ("I8", "U8", "I4", "U4"):
        return "quantized"
    if op_type in FLOAT_KERNELS or (precision in ("FP32", "F32", "FP16", "BF16")
                                    and op_type in _OV_COMPUTE):
        return "float"
    return "other"


# OpenVINO layer types that do the heavy arithmetic.
_OV_COMPUTE = frozenset({"FullyConnected", "FullyConnectedCompressed", "MatMul", "Convolution",
                         "GroupConvolution", "GroupConvolutionBackpropData", "Gemm",
                         "GRUSequence", "LSTMSequence", "RNNSequence"})
