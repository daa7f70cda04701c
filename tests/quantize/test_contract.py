"""One suite over the quantizer registry: every backend x recipe either writes a model that
runs and is scored against FP32, or refuses with a typed error that says what to use instead."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from frugalml.calibration import from_items, make_set
from frugalml.errors import QuantizationError
from frugalml.quantize import names
from frugalml.quantize.api import quantize
from frugalml.quantize.recipe import RECIPES

# (backend, output format) -> recipes it refuses, with a phrase of the advice
DYNAMIC_REFUSED = "no dynamic INT8.*--backend onnxruntime"
GGUF_ONLY = "keeps a GGUF file's own 4- and 8-bit blocks.*--recipe w4a8"
# bf16 is an FP32 IR computed in bf16 by OpenVINO, for targets whose CPUs all have it
BF16_ONNX = "bf16 is computed by OpenVINO.*--format openvino"
REFUSED = {("nncf", "onnx"): {"fp16": "--backend onnxruntime",
                              "int8-dynamic": DYNAMIC_REFUSED, "bf16": BF16_ONNX},
           ("nncf", "openvino"): {"int8-dynamic": DYNAMIC_REFUSED,
                                  "bf16": "x86-avx2 does not guarantee native bf16.*x86-amx"},
           ("onnxruntime", "onnx"): {"bf16": BF16_ONNX},
           # gguf keeps a llama.cpp file's blocks: W4A8 of a model exported from a GGUF only
           ("gguf", "onnx"): {**dict.fromkeys(("int8", "int8-dynamic", "fp16", "fp32"),
                                              GGUF_ONLY), "bf16": BF16_ONNX,
                              "w4a8": "did not come from a GGUF file.*--backend onnxruntime"},
           ("gguf", "openvino"): dict.fromkeys(RECIPES, "gguf backend cannot write openvino")}
MIN_COSINE = {"fp32": 0.999999, "fp16": 0.9999, "int8": 0.97, "int8-dynamic": 0.97, "w4a8": 0.9}
LAYER_KIND = {"int8": "int8_activation_layers", "int8-dynamic": "int8_activation_layers",
              "w4a8": "int4_weight_layers"}


def mlp_onnx(path: Path) -> Path:
    """x[batch, 64] -> MatMul -> Add -> Relu -> MatMul -> logits[batch, 10], opset 21."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(0, 0.2, (64, 64)).astype(np.float32), "w1"),
             numpy_helper.from_array(rng.normal(0, 0.1, 64).astype(np.float32), "b1"),
             numpy_helper.from_array(rng.normal(0, 0.2, (64, 10)).astype(np.float32), "w2")]
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"], name="fc1"),
             helper.make_node("Add", ["h", "b1"], ["hb"], name="bias1"),
             helper.make_node("Relu", ["hb"], ["r"], name="relu1"),
             helper.make_node("MatMul", ["r", "w2"], ["logits"], name="fc2")]
    graph = helper.make_graph(
        nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 64])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]), str(path))
    return path


@pytest.fixture(scope="module")
def mlp(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    root = tmp_path_factory.mktemp("mlp")
    rng = np.random.default_rng(1)
    items = [{"x": rng.normal(0, 1, 64).astype(np.float32)} for _ in range(160)]
    data = make_set(from_items(items, labels=[i % 10 for i in range(160)]), calibration_size=64)
    return mlp_onnx(root / "model.onnx"), data


CASES = [(b, f, r) for b in names() for f in ("onnx", "openvino") for r in RECIPES
         if not (b == "onnxruntime" and f == "openvino")]


@pytest.mark.parametrize(("backend", "fmt", "recipe"), CASES,
                         ids=[f"{b}-{f}-{r}" for b, f, r in CASES])
def test_backend_recipe_contract(mlp: tuple[Path, object], tmp_path: Path, backend: str,
                                 fmt: str, recipe: str) -> None:
    model, data = mlp
    refused = REFUSED.get((backend, fmt), {}).get(recipe)
    if refused:
        with pytest.raises(QuantizationError, match=refused):
            quantize(model, data, tmp_path / "q", recipe=recipe, backend=backend,
                     target="x86-avx2", output_format=fmt, allow_over_budget=True)
        assert not (tmp_path / "q").exists()
        return
    record = quantize(model, data, tmp_path / "q", recipe=recipe, backend=backend,
                      target="x86-avx2", output_format=fmt, eval_items=96,
                      allow_over_budget=True)
    assert record.path.is_file() and record.path.suffix == (".xml" if fmt == "openvino"
                                                             else ".onnx")
    assert (tmp_path / "q" / "quantize.json").is_file()
    acc = record.accuracy
    assert acc is not None and acc["task"] == "classification" and acc["items"] == 96
    assert acc["candidate"]["mean_cosine_to_fp32"] >= MIN_COSINE[recipe]
    if recipe in LAYER_KIND:
        assert getattr(record, LAYER_KIND[recipe]), record.to_dict()
    else:
        assert not record.int8_activation_layers and not record.int4_weight_layers


def test_onnxruntime_refuses_openvino_output(mlp: tuple[Path, object], tmp_path: Path) -> None:
    model, data = mlp
    with pytest.raises(QuantizationError, match="cannot write openvino"):
        quantize(model, data, tmp_path / "q", backend="onnxruntime", output_format="openvino")
