"""One helper for numeric assertions, so failures name the stage and output."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from frugalml.runtime.numerics import max_abs_error, row_cosine


def assert_outputs_close(stage: str, ref: Mapping[str, np.ndarray],
                         got: Mapping[str, np.ndarray], *, atol: float,
                         min_cosine: float) -> None:
    """Check names, shapes, dtypes, max abs error and per-item cosine of every output."""
    assert set(ref) == set(got), f"{stage}: outputs {sorted(got)} != expected {sorted(ref)}"
    for name, r in ref.items():
        g = got[name]
        assert g.shape == r.shape, f"{stage}/{name}: shape {g.shape} != {r.shape}"
        assert g.dtype == r.dtype, f"{stage}/{name}: dtype {g.dtype} != {r.dtype}"
        err, cos = max_abs_error(r, g), float(row_cosine(r, g).min())
        assert err <= atol, f"{stage}/{name}: max abs error {err:.3g} > {atol}"
        assert cos >= min_cosine, f"{stage}/{name}: min cosine {cos:.6f} < {min_cosine}"


def tiny_onnx(path: Path, *, external: bool = False) -> Any:
    """Write a one-MatMul ONNX model (x: float32[batch, 3] -> y = x @ arange(12).reshape(3, 4)).

    With ``external``, the weight goes to ``tiny.onnx.data`` beside the model.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(3, 4), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, None])], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(model, str(path), save_as_external_data=external,
                    location="tiny.onnx.data", size_threshold=0)
    return model
