"""x86-avx2 static INT8: 7-bit weights where ONNX Runtime's kernels sum u8 x s8 product pairs in
int16 (a 1x1 convolution), full 8-bit weights in depthwise convolutions, whose kernel does not:
the fused kernels of this host must still equal the unfused reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from frugalml.quantize.api import quantize
from frugalml.quantize.recipe import get_recipe


def _cnn(path: Path, rng: np.random.Generator) -> None:
    """image (8 channels) -> 1x1 conv to 16 (bias) -> Relu -> depthwise 3x3 (bias)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    inits = [numpy_helper.from_array(rng.normal(0, 0.3, (16, 8, 1, 1)).astype(np.float32), "pw"),
             numpy_helper.from_array(rng.normal(0, 0.1, 16).astype(np.float32), "pw_b"),
             numpy_helper.from_array(rng.normal(0, 0.5, (16, 1, 3, 3)).astype(np.float32), "dw"),
             numpy_helper.from_array(rng.normal(0, 0.1, 16).astype(np.float32), "dw_b")]
    nodes = [helper.make_node("Conv", ["image", "pw", "pw_b"], ["p"], name="pointwise"),
             helper.make_node("Relu", ["p"], ["r"], name="relu"),
             helper.make_node("Conv", ["r", "dw", "dw_b"], ["out"], name="depthwise",
                              group=16, pads=[1, 1, 1, 1])]
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, [None, 8, 16, 16])
    out = helper.make_tensor_value_info("out", TensorProto.FLOAT, [None, 16, 16, 16])
    graph = helper.make_graph(nodes, "cnn", [image], [out], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


@pytest.fixture(scope="module")
def avx2_cnn(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, np.ndarray]:
    from frugalml.calibration import make_set
    from frugalml.calibration.arrays import ArraySource

    root = tmp_path_factory.mktemp("depthwise")
    rng = np.random.default_rng(0)
    _cnn(root / "fp32.onnx", rng)
    # Pixels of -1 or 1: u8 codes 0 and 255, where pair sums of 8-bit products pass int16.
    images = np.sign(rng.uniform(-1, 1, (96, 8, 16, 16))).astype(np.float32)
    data = make_set(ArraySource({"image": images}), calibration_size=64)
    record = quantize(root / "fp32.onnx", data, root / "q", recipe=get_recipe(
        "int8", calibration_items=64), target="x86-avx2", eval_items=32, allow_over_budget=True)
    return root / "fp32.onnx", record.path, images[64:]


def _dequantized_weights(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Conv name -> (its int8 weight codes, the weight they dequantize to)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    producer = {o: n for n in model.graph.node for o in n.output}
    out = {}
    for node in model.graph.node:
        if node.op_type == "Conv":
            codes, scale = (inits[n] for n in producer[node.input[1]].input[:2])
            out[node.name] = codes, codes * scale.reshape(-1, 1, 1, 1)
    return out


def test_depthwise_weights_keep_8_bits_and_pointwise_weights_7(
        avx2_cnn: tuple[Path, Path, np.ndarray]) -> None:
    import onnx
    from onnx import numpy_helper

    fp32, quantized, _ = avx2_cnn
    weights = _dequantized_weights(quantized)
    source = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(fp32)).graph.initializer}
    dw_codes, dw = weights["depthwise"]
    pw_codes, _ = weights["pointwise"]
    assert np.abs(dw_codes).max() == 127 and np.abs(pw_codes).max() <= 64
    # The 8-bit grid: every depthwise weight within half a step of FP32 (step = max / 127).
    step = np.abs(source["dw"]).reshape(16, -1).max(axis=1) / 127
    assert np.all(np.abs(dw - source["dw"]) <= step.reshape(-1, 1, 1, 1) / 2 + 1e-7)


def test_this_hosts_fused_kernels_equal_the_unfused_reference(
        avx2_cnn: tuple[Path, Path, np.ndarray]) -> None:
    """On an AVX2 host without VNNI this is the saturation check (8-bit 1x1 weights gave 82
    where the reference gave 160); the int32 bias moved with the depthwise weight scale."""
    import onnxruntime as ort

    fp32, quantized, images = avx2_cnn

    def run(path: Path, level: ort.GraphOptimizationLevel) -> np.ndarray:
        options = ort.SessionOptions()
        options.graph_optimization_level = level
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return session.run(None, {"image": images})[0]

    fused = run(quantized, ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
    reference = run(quantized, ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    want = run(fp32, ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
    step = np.abs(reference).max() / 127  # an output quantization step, about
    assert np.abs(fused - reference).max() <= 1.01 * step
    cosine = (fused * want).sum() / np.linalg.norm(fused) / np.linalg.norm(want)
    assert cosine > 0.999
