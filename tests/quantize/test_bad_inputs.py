"""The quantize stage's bad inputs: each a typed error that says what to do, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from frugalml.calibration import from_items, make_set
from frugalml.cli import main
from frugalml.errors import CalibrationError, QuantizationError
from frugalml.quantize.api import quantize
from frugalml.quantize.diagnose import diagnose
from frugalml.quantize.recipe import Budget, get_recipe
from tests.quantize.test_contract import mlp_onnx


def _data(name: str = "x", width: int = 64, count: int = 120, labelled: bool = True) -> object:
    """Random items; ``labelled=False`` makes the task output cosine (no top-1 checks)."""
    rng = np.random.default_rng(2)
    items = [{name: rng.normal(0, 1, width).astype(np.float32)} for _ in range(count)]
    labels = [i % 10 for i in range(count)] if labelled else None
    return make_set(from_items(items, labels=labels), calibration_size=count // 2)


def _relu_only(path: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"], name="relu")], "relu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 64])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]), str(path))
    return path


@pytest.mark.parametrize("backend", ["onnxruntime", "nncf"])
def test_model_with_nothing_to_quantize(tmp_path: Path, backend: str) -> None:
    with pytest.raises(QuantizationError, match="nothing to quantize"):
        quantize(_relu_only(tmp_path / "relu.onnx"), _data(), tmp_path / "q", backend=backend)
    assert not (tmp_path / "q").exists()


@pytest.mark.parametrize(("data", "message"), [
    (lambda: _data(name="pixels"), "the model has no input 'pixels'"),
    (lambda: _data(width=32), r"has shape \(1, 32\), the model expects"),
])
def test_calibration_data_that_does_not_fit_the_model(tmp_path: Path, data: object,
                                                      message: str) -> None:
    with pytest.raises(CalibrationError, match=message):
        quantize(mlp_onnx(tmp_path / "m.onnx"), data(), tmp_path / "q")  # type: ignore[operator]
    assert not (tmp_path / "q").exists()


def test_over_budget_is_an_error_unless_kept_and_marked(tmp_path: Path) -> None:
    model, data = mlp_onnx(tmp_path / "m.onnx"), _data(labelled=False)  # scored by cosine
    strict = get_recipe("int8", budget=Budget(min_mean_cosine=0.999999, max_size_ratio=2.0))
    with pytest.raises(QuantizationError, match="over its budget.*frugal diagnose"):
        quantize(model, data, tmp_path / "q", recipe=strict)
    assert not (tmp_path / "q").exists()
    kept = quantize(model, data, tmp_path / "q", recipe=strict, allow_over_budget=True)
    assert kept.accuracy["over_budget_kept"] and not kept.accuracy["within_budget"]
    saved = json.loads((tmp_path / "q" / "quantize.json").read_text())
    assert saved["accuracy"]["over_budget_kept"] is True


def _gelu_mlp(path: Path) -> Path:
    """x[batch, 64] -> MatMul fc1 -> Gelu -> MatMul fc2 -> y: fc2 reads a GELU output, so it
    keeps int8 weights with float activations, which no node taken back to float undoes."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(0, 0.2, (64, 64)).astype(np.float32), w)
             for w in ("w1", "w2")]
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"], name="fc1"),
             helper.make_node("Gelu", ["h"], ["g"], name="gelu"),
             helper.make_node("MatMul", ["g", "w2"], ["y"], name="fc2")]
    graph = helper.make_graph(
        nodes, "gelu_mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", 64])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]), str(path))
    return path


def test_budget_that_float_layers_cannot_meet(tmp_path: Path) -> None:
    recipe = get_recipe("int8", budget=Budget(min_mean_cosine=0.9999999))
    with pytest.raises(QuantizationError,
                       match="not met even with all 1 ranked nodes in float"):
        diagnose(_gelu_mlp(tmp_path / "m.onnx"), _data(labelled=False), tmp_path / "d",
                 recipe=recipe, eval_items=60, probe_items=16)
    assert not (tmp_path / "d").exists()


def _calibrated_mlp(tmp_path: Path, items: int) -> Path:
    """The MLP and ``tmp_path/calib``: ``items`` labelled random inputs, half calibration."""
    model = mlp_onnx(tmp_path / "m.onnx")
    rng = np.random.default_rng(3)
    np.savez(tmp_path / "data.npz", x=rng.normal(0, 1, (items, 64)).astype(np.float32),
             labels=np.arange(items) % 10)
    assert main(["calibrate", str(tmp_path / "data.npz"), "--model", str(model), "--out",
                 str(tmp_path / "calib"), "--num", str(items // 2)]) == 0
    return model


@pytest.mark.parametrize(("argv", "message"), [
    (["--recipe", "int3"],
     "Unknown recipe 'int3'; known recipes: int8, int8-dynamic, w4a8, fp16, bf16, fp32"),
    (["--backend", "tflite"], "Unknown quantization backend 'tflite'; known: onnxruntime, nncf"),
    (["--min-agreement", "1.5"], "min_top1_agreement 1.5"),
    (["--group-size", "48"], "group_size 48 is not one of"),
    (["--recipe", "w4a8", "--weight-methods", "awq"], "use --backend nncf"),
])
def test_cli_refuses_with_advice(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                 argv: list[str], message: str) -> None:
    model = _calibrated_mlp(tmp_path, 80)
    code = main(["quantize", str(model), "--data", str(tmp_path / "calib"), "--out",
                 str(tmp_path / "q"), *argv])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err, err
    assert not (tmp_path / "q").exists()


def test_cli_quantize_and_diagnose_round_trip(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    model = mlp_onnx(tmp_path / "m.onnx")
    rng = np.random.default_rng(3)
    # Unlabelled: the outputs' cosine to FP32 is the measure.
    np.savez(tmp_path / "data.npz", x=rng.normal(0, 1, (120, 64)).astype(np.float32))
    assert main(["calibrate", str(tmp_path / "data.npz"), "--model", str(model), "--out",
                 str(tmp_path / "calib"), "--num", "60"]) == 0
    capsys.readouterr()
    assert main(["quantize", str(model), "--data", str(tmp_path / "calib"), "--out",
                 str(tmp_path / "q"), "--min-cosine", "0.9", "--max-size-ratio", "1",
                 "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["precision"] == "int8" and record["accuracy"]["within_budget"]
    assert record["accuracy"]["task"] == "outputs"
    assert record["int8_activation_layers"] == ["fc1", "fc2"]
    # A budget the all-INT8 model misses but one float layer meets: diagnose finds it.
    cosine = record["accuracy"]["candidate"]["mean_cosine_to_fp32"]
    assert main(["diagnose", str(model), "--data", str(tmp_path / "calib"), "--out",
                 str(tmp_path / "d"), "--min-cosine", f"{cosine + (1 - cosine) / 4:.6f}",
                 "--max-size-ratio", "1", "--eval-items", "60", "--probe-items", "16",
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert len(result["ignored_nodes"]) == 1 and result["final"]["within_budget"]
    assert not result["baseline"]["within_budget"]
    fixed = json.loads((tmp_path / "d" / "quantize.json").read_text())
    assert fixed["recipe"]["ignored_nodes"] == result["ignored_nodes"]
    assert fixed["float_layers"] == result["ignored_nodes"]


def test_cli_quantize_prints_fp32_and_quantized_values_not_only_the_drop(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = _calibrated_mlp(tmp_path, 120)
    capsys.readouterr()
    assert main(["quantize", str(model), "--data", str(tmp_path / "calib"), "--out",
                 str(tmp_path / "q"), "--max-size-ratio", "1", "--budget", "100"]) == 0
    out = capsys.readouterr().out
    record = json.loads((tmp_path / "q" / "quantize.json").read_text())["accuracy"]
    assert f"FP32: top1_accuracy {record['reference']['top1_accuracy']:.4f}" in out
    assert f"quantized: top1_accuracy {record['candidate']['top1_accuracy']:.4f}" in out


def test_openvino_refuses_an_unknown_node_to_keep_in_float_but_skips_fused_safety_nodes(
        tmp_path: Path) -> None:
    """A user's --exclude must name real nodes; range safety's names OpenVINO fused away
    (the MLP's output tail is empty, so only the user's name is at stake) are not errors."""
    from frugalml.quantize.api import quantize

    data = _data(labelled=False)
    recipe = get_recipe("int8", ignored_nodes=("no_such_node",),
                        budget=Budget(max_accuracy_drop_points=100, max_size_ratio=2))
    with pytest.raises(QuantizationError, match=r"not found in .*\['no_such_node'\]"):
        quantize(mlp_onnx(tmp_path / "m.onnx"), data, tmp_path / "q", backend="nncf",
                 output_format="openvino", recipe=recipe)
    lenient = get_recipe("int8", range_safety_nodes=("fused_away",),
                         budget=Budget(max_accuracy_drop_points=100, max_size_ratio=2))
    from frugalml.quantize.nncf import NncfQuantizer
    from frugalml.targets import detect

    record = NncfQuantizer().quantize(tmp_path / "m.onnx", data, lenient, detect(),
                                      tmp_path / "ok.xml", source_digest="x",
                                      structure="plain")
    assert record.int8_activation_layers


def test_an_openvino_ir_is_refused_from_a_graph_of_onnxruntime_operators(tmp_path: Path) -> None:
    """A decoder's export fused for ONNX Runtime made NNCF fail after loading it, with advice
    about the data ("not yet supported OpenVINO data type: dynamic"): refused before any work,
    naming the operators; the same graph still quantizes to ONNX."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(
        np.random.default_rng(0).normal(0, 0.1, (64, 10)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["h"], name="fc"),
         helper.make_node("Gelu", ["h"], ["y"], name="gelu", domain="com.microsoft")],
        "contrib", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 10])], [weight])
    model = tmp_path / "contrib.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21),
                                                      helper.make_opsetid("com.microsoft", 1)]),
              str(model))
    data = _data(labelled=False)
    with pytest.raises(QuantizationError, match=r"ONNX Runtime's own operators \(Gelu\).*"
                                                r"--format onnx"):
        quantize(model, data, tmp_path / "q", backend="nncf", output_format="openvino")
    assert not (tmp_path / "q").exists()
    record = quantize(model, data, tmp_path / "onnx", backend="nncf", output_format="onnx",
                      allow_over_budget=True)
    assert record.path.name == "model.onnx"
