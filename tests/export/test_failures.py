"""Export failures are caught, diagnosed and leave nothing behind; bad inputs get typed errors."""

from __future__ import annotations

import py_compile
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from frugalml.cli import main
from frugalml.errors import ExportError
from frugalml.export import GraphSpec, export
from tests.helpers import tiny_onnx

SPEC = GraphSpec(("x",), ("y",), {"x": {0: "batch"}})


@torch.library.custom_op("frugaltest::mystery", mutates_args=())
def mystery(x: torch.Tensor) -> torch.Tensor:
    """An operator with no ONNX translation in any exporter."""
    return x * 2


@mystery.register_fake
def _(x: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(x)


class UsesMystery(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return mystery(x) + 1


class BranchesOnValues(torch.nn.Module):
    """torch.export refuses it; the TorchScript tracer freezes the branch the example took."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.mean() > 0:
            return x * 2
        return x - 1


def test_unsupported_operator_is_named_with_a_repro(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(ExportError) as err:
        export(UsesMystery(), out, example={"x": np.ones((2, 3), np.float32)}, spec=SPEC)
    text = str(err.value)
    assert "torch.onnx.dynamo: unsupported operator, operator frugaltest.mystery" in text
    assert "torch.onnx.torchscript: unsupported operator, operator frugaltest::mystery" in text
    assert not out.exists(), "a failed export must leave no output directory"
    script = tmp_path / "out-repro" / "repro_export.py"
    assert str(script) in text
    py_compile.compile(str(script), doraise=True)
    with np.load(script.parent / "inputs.npz", allow_pickle=False) as inputs:
        assert inputs["x"].shape == (2, 3)


def test_frozen_branch_is_caught_by_validation(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(ExportError) as err:
        export(BranchesOnValues(), out, example={"x": np.ones((2, 3), np.float32)}, spec=SPEC,
               validation=[{"x": np.full((4, 3), -3.0, np.float32)}])
    text = str(err.value)
    assert "y: max abs error 2" in text  # torch gives -4, the frozen trace -6
    assert "Exported by torch.onnx.torchscript" in text
    assert "torch.onnx.dynamo: data-dependent control flow" in text
    assert "test_failures.py" in text and "if x.mean() > 0" in text  # the source line
    assert not out.exists()


def test_onnx_passthrough_copies_external_data_and_infers_shapes(tmp_path: Path) -> None:
    src = tmp_path / "src" / "tiny.onnx"
    tiny_onnx(src, external=True)
    x = np.ones((2, 3), np.float32)
    record = export(src, tmp_path / "out", validation=[{"x": x}])
    assert record.exporter == "passthrough" and record.opset == 21
    model = onnx.load(str(record.path))
    dims = [d.dim_param or d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 4]  # inferred; the source left both output dims unknown
    from frugalml.export.simplify import run_onnx

    got = run_onnx(record.path, [{"x": x}], ["y"])[0]["y"]
    np.testing.assert_allclose(got, x @ np.arange(12, dtype=np.float32).reshape(3, 4))


@pytest.mark.parametrize("case", ["missing", "no-config", "truncated", "not-onnx",
                                  "outside", "short-data", "format", "no-example"])
def test_bad_inputs_are_typed_errors_with_advice(tmp_path: Path, case: str) -> None:
    src = tmp_path / "m" / "tiny.onnx"
    kwargs: dict = {}
    if case == "missing":
        model, advice = tmp_path / "nowhere", "does not exist"
    elif case == "no-config":
        (tmp_path / "m").mkdir()
        model, advice = tmp_path / "m", "no config.json"
    elif case == "truncated":
        tiny_onnx(src)
        src.write_bytes(src.read_bytes()[:40])
        model, advice = src, "truncated"
    elif case == "not-onnx":
        src.parent.mkdir()
        src.write_text("this is a text file, not a model\n")
        model, advice = src, "not a readable ONNX model|holds no graph"
    elif case == "outside":
        proto = tiny_onnx(src, external=True)
        proto.graph.initializer[0].external_data[0].value = "../../secret.bin"
        onnx.save_model(proto, str(src))
        model, advice = src, "outside its directory"
    elif case == "short-data":
        tiny_onnx(src, external=True)
        (src.parent / "tiny.onnx.data").write_bytes(b"\0" * 8)
        model, advice = src, "is truncated"
    elif case == "format":
        tiny_onnx(src)
        model, advice, kwargs = src, "Unknown format 'tflite'", {"format": "tflite"}
    else:
        model, advice = BranchesOnValues(), "needs `example`"
    with pytest.raises(ExportError, match=advice):
        export(model, tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()


def test_cli_export_onnx_and_error_exit(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    src = tmp_path / "tiny.onnx"
    tiny_onnx(src)
    assert main(["export", str(src), "--out", str(tmp_path / "o"), "--format", "openvino"]) == 0
    assert "model.xml" in capsys.readouterr().out
    assert (tmp_path / "o" / "model.bin").is_file()
    assert main(["export", str(tmp_path / "nope"), "--out", str(tmp_path / "p")]) == 2
    assert "does not exist" in capsys.readouterr().err
