"""Dynamic INT8 scored off its CPU class: MatMulInteger computed exactly, as the target's
kernels do, not through this host's (x86 AVX2 without VNNI saturates u8 x s8 pair sums)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from frugalml.quantize._exact_integer import exact_integer_copy, integer_kernels_left
from frugalml.quantize.api import quantize
from tests.quantize.test_contract import mlp  # noqa: F401  (the fixture)


def _integer_model(path: Path, weights: np.ndarray, b_zero: np.ndarray) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    inits = [numpy_helper.from_array(weights, "b"), numpy_helper.from_array(b_zero, "b_zero")]
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "b", "a_zero", "b_zero"], ["y"], name="mm")],
        "integers", [helper.make_tensor_value_info("a", TensorProto.UINT8, [1, 64]),
                     helper.make_tensor_value_info("a_zero", TensorProto.UINT8, [])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [1, 8])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]), str(path))


def test_the_copy_gives_the_exact_integer_products(tmp_path: Path) -> None:
    import onnxruntime as ort

    rng = np.random.default_rng(0)
    weights = rng.integers(-128, 128, (64, 8)).astype(np.int8)
    weights[:, 0] = 127  # u8 255 x s8 127, pair sums past int16: where AVX2 saturates
    b_zero = rng.integers(-3, 4, 8).astype(np.int8)
    a = rng.integers(0, 256, (1, 64)).astype(np.uint8)
    a[0, :] = np.maximum(a[0, :], 250)
    a_zero = np.array(7, np.uint8)
    _integer_model(tmp_path / "int.onnx", weights, b_zero)
    assert exact_integer_copy(tmp_path / "int.onnx", tmp_path / "exact.onnx") == 1
    # No integer kernel is left in the copy: it may run with all graph optimizations.
    assert integer_kernels_left(tmp_path / "int.onnx")
    assert not integer_kernels_left(tmp_path / "exact.onnx")
    session = ort.InferenceSession(str(tmp_path / "exact.onnx"),
                                   providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"a": a, "a_zero": a_zero})
    want = (a.astype(np.int64) - 7) @ (weights.astype(np.int64) - b_zero.astype(np.int64))
    assert got.dtype == np.int32 and np.array_equal(got, want)


def test_dynamic_int8_for_another_cpu_class_is_scored_with_exact_products(
        mlp: tuple[Path, object], tmp_path: Path) -> None:  # noqa: F811
    model, data = mlp
    record = quantize(model, data, tmp_path / "q", recipe="int8-dynamic", target="arm64",
                      eval_items=96, allow_over_budget=True)
    assert "MatMulInteger computed exactly" in record.accuracy["scored_with"]
    assert "the rest with all graph optimizations" in record.accuracy["scored_with"]
    assert record.accuracy["candidate"]["mean_cosine_to_fp32"] >= 0.97
    assert sorted(p.name for p in (tmp_path / "q").iterdir()) == ["model.onnx", "quantize.json"]
