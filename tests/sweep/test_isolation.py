"""A failing cell records its typed error and the others go on; a cell whose target has no
device is built and verified but not measured, and both run again on the next sweep."""

from __future__ import annotations

import json
from pathlib import Path

from frugalml.sweep.run import run_sweep
from tests.sweep.conftest import write_spec


def test_failed_and_unmeasured_cells_are_recorded_and_retried(sweep_models: Path,
                                                              tmp_path: Path) -> None:
    spec = write_spec(sweep_models / "phone.json", json.dumps({
        "name": "phone", "models": [{"name": "mnist", "model": "mnist.onnx",
                                     "data": "cal-mnist"}],
        "recipes": ["fp32"], "backends": ["onnxruntime", "openvino"],
        "targets": ["android-arm64"], "settings": {"threads": [1, 2]}, "eval_items": 16}))
    result = run_sweep(spec, tmp_path / "out", workers=1, quiet=True)
    # cells differing only in threads share their (unmeasured) bundle; each gets its record
    assert [(r["backend"], r["threads"], r["status"]) for r in result.rows] == [
        ("onnxruntime", 1, "built"), ("onnxruntime", 2, "built"),
        ("openvino", 1, "failed"), ("openvino", 2, "failed")]
    rows = {r["backend"]: r for r in result.rows}
    built, failed = rows["onnxruntime"], rows["openvino"]
    assert built["status"] == "built" and built["verified"] == "verified"
    assert "no node advertises target:android-arm64" in built["why"]
    assert "ray start --address=HEAD:6379 --resources='{\"target:android-arm64\": 1}'" in \
        built["why"]
    assert failed["status"] == "failed"
    assert failed["why"].startswith("compile: TargetError: android-arm64 cannot be built for "
                                    "backend 'openvino'")
    table = (tmp_path / "out" / "sweep.md").read_text()
    assert "| mnist | fp32 | openvino | 2 | failed |" in table
    assert not (tmp_path / "out" / "report").exists()  # nothing measured, no bench report

    again = run_sweep(spec, tmp_path / "out", workers=1, quiet=True)
    assert sorted(again.ran) == sorted(r["label"] for r in result.rows)
    assert [r["status"] for r in again.rows] == ["built", "built", "failed", "failed"]
