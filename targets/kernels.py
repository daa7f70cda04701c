"""Which kernels ONNX Runtime actually runs after its graph fusions: int8 or float."""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

from frugalml.runtime.kernels import FLOAT_KERNELS, INT8_KERNELS


def kernel_counts(model_file: Path) -> dict[str, int]:
    """Let ONNX Runtime optimise the model as it would at load, then count compute kernels.

    Returns:
        ``{"int8": n, "float": m, "<op type>": count, ...}`` for the matrix-multiply kernels.
    """
    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        options.optimized_model_filepath = str(Path(tmp) / "optimized.onnx")
        options.log_severity_level = 3
        ort.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])
        ops = Counter(n.op_type for n in onnx.load(options.optimized_model_filepath).graph.node)
    counts = {op: n for op, n in sorted(ops.items()) if op in INT8_KERNELS | FLOAT_KERNELS}
    counts["int8"] = sum(n for op, n in ops.items() if op in INT8_KERNELS)
    counts["float"] = sum(n for op, n in ops.items() if op in FLOAT_KERNELS)
    return counts


# OpenVINO IR compute ops; one counts as int8 when a FakeQuantize feeds its data input.
_IR_COMPUTE = ("Convolution", "GroupConvolution", "MatMul")


def ir_kernel_counts(model: object) -> dict[str, int]:
    """``{"int8": n, "float": m, "<op type>": count}`` of an OpenVINO model's compute ops."""
    ops = [op for op in model.get_ops()  # type: ignore[attr-defined]
           if op.get_type_name() in _IR_COMPUTE]
    quantized = sum(1 for op in ops
                    if op.input_value(0).get_node().get_type_name() == "FakeQuantize")
    counts = dict(sorted(Counter(op.get_type_name() for op in ops).items()))
    return {**counts, "int8": quantized, "float": len(ops) - quantized}
