"""Spec validation: every mistake is named before any work starts; only one module imports
Ray."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from frugalml.errors import SweepError
from frugalml.sweep.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]


def _spec(tmp_path: Path, **fields: object) -> Path:
    (tmp_path / "m.onnx").write_bytes(b"")
    (tmp_path / "cal").mkdir(exist_ok=True)
    base = {"models": [{"model": "m.onnx", "data": "cal"}]}
    path = tmp_path / "spec.json"
    path.write_text(json.dumps({**base, **fields}))
    return path


def test_a_spec_expands_to_its_grid_with_defaults(tmp_path: Path) -> None:
    spec = load_spec(_spec(tmp_path, recipes=["fp32", {"recipe": "w4a8", "group_size": 32}],
                           backends=["onnxruntime", "openvino"],
                           targets=["x86-avx2", "android-arm64"],
                           settings={"threads": [1, 2]}))
    cells = spec.cells()
    # w4a8 through ONNX Runtime writes MatMulNBits, which OpenVINO does not read
    assert len(cells) == 1 * 2 * 2 * 2 + 1 * 1 * 1 * 2 * 2
    assert {c.backend for c in cells if c.candidate.label == "w4a8"} == {"onnxruntime"}
    assert cells[0].label == "m/fp32/onnxruntime/x86-avx2/1t"
    assert spec.candidates[1].to_dict() == {
        "name": "w4a8", "label": "w4a8", "recipe": "w4a8", "backend": "onnxruntime",
        "format": "onnx", "graph": "exported", "options": {"group_size": 32}}
    assert spec.models[0].model == tmp_path / "m.onnx" and dict(spec.bench)["runs"] == 100


def test_candidates_by_name_run_where_their_artifact_can(tmp_path: Path) -> None:
    """Deploy's candidates by name, then recipes entries; an IR candidate is a cell of
    OpenVINO only, a fused or 4-bit ONNX graph one of ONNX Runtime only."""
    from frugalml.deploy.candidates import CANDIDATES

    spec = load_spec(_spec(tmp_path, candidates=["fp32", "int8-dynamic-fused", "w4a8-gguf",
                                                 "int8-openvino", "int8-static"],
                           recipes=[{"recipe": "int8", "label": "int8-c9",
                                     "calibration_items": 9}],
                           backends=["onnxruntime", "openvino"], targets=["x86-avx2"]))
    assert [c.label for c in spec.candidates] == ["fp32", "int8-dynamic-fused", "w4a8-gguf",
                                                  "int8-openvino", "int8-static", "int8-c9"]
    assert spec.candidates[1].spec is CANDIDATES["int8-dynamic-fused"]
    assert spec.candidates[0].is_fp32 and not spec.candidates[4].is_fp32
    cells = {(c.candidate.label, c.backend) for c in spec.cells()}
    assert cells == {("fp32", "onnxruntime"), ("fp32", "openvino"),
                     ("int8-dynamic-fused", "onnxruntime"), ("w4a8-gguf", "onnxruntime"),
                     ("int8-openvino", "openvino"), ("int8-static", "onnxruntime"),
                     ("int8-static", "openvino"), ("int8-c9", "onnxruntime"),
                     ("int8-c9", "openvino")}
    assert spec.candidates[5].to_dict()["options"] == {"calibration_items": 9}
    # without candidates or recipes: FP32 and deploy's int8-static
    assert [c.label for c in load_spec(_spec(tmp_path)).candidates] == ["fp32", "int8-static"]


@pytest.mark.parametrize(("fields", "message"), [
    ({"model": 1}, r"unknown field\(s\) model"),
    ({"recipes": []}, "recipes must be a non-empty list"),
    ({"recipes": ["int9"]}, "recipe 'int9': Unknown recipe 'int9'; known recipes: int8"),
    ({"recipes": [{"recipe": "int8", "quantizer": "tflite"}]}, "recipe 'int8': .*tflite"),
    ({"recipes": [{"recipe": "int8", "group": 3}]}, "does not take these options"),
    ({"candidates": ["int8-fastest"]}, "unknown candidate 'int8-fastest'; choose among fp32, "
                                       "fp32-fused, int8-static"),
    ({"candidates": ["int8-openvino"], "backends": ["onnxruntime"]},
     "no candidate runs on the backends .*an OpenVINO IR candidate needs backend openvino"),
    ({"candidates": ["int8-static", "int8-static"]}, "each candidate label must be unique"),
    ({"backends": ["tensorrt"]}, "unknown backend 'tensorrt'; use onnxruntime or openvino"),
    ({"targets": ["x86-sse"]}, "Unknown target 'x86-sse'"),
    ({"settings": {"threads": [-1]}}, r"settings.threads must be an integer >= 0, not -1"),
    ({"bench": {"runs": 1}}, r"bench.runs must be an integer >= 2"),
    ({"bench": {"iterations": 5}}, "bench takes runs, warmup"),
    ({"models": [{"model": "m.onnx"}]}, "a models entry has model .* data"),
    ({"models": [{"model": "none.onnx", "data": "cal"}]}, r"model .*none.onnx does not exist"),
    ({"recipes": ["int8", {"recipe": "int8", "calibration_items": 9}]},
     r"each candidate label must be unique .* got \['int8', 'int8'\]"),
])
def test_spec_mistakes_are_named(tmp_path: Path, fields: dict, message: str) -> None:
    with pytest.raises(SweepError, match=message):
        load_spec(_spec(tmp_path, **fields))


def test_unreadable_specs_are_named(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("models: [unclosed")
    with pytest.raises(SweepError, match="is not valid YAML"):
        load_spec(tmp_path / "bad.yaml")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(SweepError, match="is not valid JSON"):
        load_spec(tmp_path / "bad.json")
    with pytest.raises(SweepError, match="Cannot read the sweep spec"):
        load_spec(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- a\n")
    with pytest.raises(SweepError, match="must hold a mapping"):
        load_spec(tmp_path / "list.yaml")


def test_only_the_cluster_module_imports_ray() -> None:
    importers = {p.relative_to(ROOT).as_posix()
                 for folder in ("frugalml", "export", "calibration", "quantize", "targets",
                                "runtime")
                 for p in (ROOT / folder).rglob("*.py")
                 if re.search(r"^\s*(import ray|from ray[ .])", p.read_text(), re.MULTILINE)}
    assert importers == {"frugalml/sweep/cluster.py"}
