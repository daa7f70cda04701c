"""A sweep of deploy's candidates by name (issue 33): a tiny BERT and a tiny Llama written as a
GGUF, each through fp32, fp32-fused, int8-dynamic-fused and w4a8-gguf on the embedded Ray.
Each cell is built as deploy builds that candidate (the fused graph for the fused ones, the
file's own blocks for w4a8-gguf); a candidate deploy would not try for a model is recorded as
not applicable, with why, and is not run again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import onnx
import pytest

from frugalml.cli import main
from tests.sweep.conftest import write_spec

SPEC = """
name: by-candidate
models:
  - {name: bert, model: bert, data: cal-bert}
  - {name: llama, model: llama.gguf, data: cal-llama}
candidates: [fp32, fp32-fused, int8-dynamic-fused, w4a8-gguf]
backends: [onnxruntime, openvino]
eval_items: 16
bench: {runs: 10, warmup: 2, speed_cap_s: 5}
"""


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    from bench._data import tiny_shakespeare
    from tests.decoders import tiny_bert, tiny_llama_gguf

    root = tmp_path_factory.mktemp("by-candidate")
    env = {**os.environ, "FRUGALML_CACHE": str(root / "cache")}
    os.environ["FRUGALML_CACHE"] = env["FRUGALML_CACHE"]  # calibrate reads the GGUF here
    try:
        tiny_bert(root / "bert")
        tiny_llama_gguf(root / "llama.gguf")
        lines = [t for t in tiny_shakespeare().read_text().splitlines()[:400] if t]
        (root / "lines.txt").write_text("\n".join(lines))
        for model in ("bert", "llama.gguf"):
            assert main(["calibrate", str(root / "lines.txt"), "--model", str(root / model),
                         "--out", str(root / f"cal-{Path(model).stem}"), "--num", "16",
                         "--json"]) == 0
    finally:
        del os.environ["FRUGALML_CACHE"]
    # a language model's text is cut into windows of running text by default, as deploy does
    assert json.loads((root / "cal-llama" / "calibration.json").read_text())["options"][
        "window"] == 128
    spec = write_spec(root / "spec.yaml", SPEC)
    cmd = [sys.executable, "-m", "frugalml.cli", "sweep", str(spec), "--out",
           str(root / "out"), "--workers", "1", "--json"]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=900,
                          env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    again = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=300,
                           env=env)
    assert again.returncode == 0, again.stderr[-3000:]
    return root / "out", {"first": json.loads(done.stdout), "again": json.loads(again.stdout)}


def _by_cell(out: Path) -> dict[tuple[str, str, str], dict]:
    records = json.loads((out / "sweep.json").read_text())["records"]
    return {(r["model"], r["candidate"], r["backend"]): r for r in records}


def _ops(record: dict) -> set[str]:
    return {n.op_type for n in onnx.load(record["quantize"]["path"],
                                         load_external_data=False).graph.node}


def test_every_candidate_runs_by_name_as_deploy_builds_it(swept: tuple[Path, dict]) -> None:
    out, runs = swept
    cells = _by_cell(out)
    # an IR-less ONNX candidate of ONNX Runtime's own operators runs on ONNX Runtime only
    assert set(cells) == {("bert", "fp32", "onnxruntime"), ("bert", "fp32", "openvino"),
                          *((m, c, "onnxruntime") for m in ("bert", "llama")
                            for c in ("fp32-fused", "int8-dynamic-fused", "w4a8-gguf")),
                          ("llama", "fp32", "onnxruntime"), ("llama", "fp32", "openvino")}
    measured = {k for k, r in cells.items() if r["status"] == "measured"}
    assert measured == {("bert", "fp32", "onnxruntime"), ("bert", "fp32", "openvino"),
                        ("bert", "fp32-fused", "onnxruntime"),
                        ("bert", "int8-dynamic-fused", "onnxruntime"),
                        ("llama", "fp32", "onnxruntime"), ("llama", "w4a8-gguf", "onnxruntime")
                        }, {k: r.get("error") for k, r in cells.items()}
    fused, dynamic = cells[("bert", "fp32-fused", "onnxruntime")], cells[
        ("bert", "int8-dynamic-fused", "onnxruntime")]
    # both from the fused graph (attention as one operator, layer norms with their residual
    # Adds), the dynamic one with integer linear layers
    assert {"MultiHeadAttention", "SkipLayerNormalization"} <= _ops(fused)
    assert {"SkipLayerNormalization", "MatMulInteger"} <= _ops(dynamic)
    assert fused["quantize"]["accuracy"]["candidate"]["mean_cosine_to_fp32"] >= 0.9999
    assert dynamic["quantize"]["accuracy"]["candidate"]["mean_cosine_to_fp32"] >= 0.98
    assert dynamic["quantize"]["size_bytes"] < 0.5 * fused["quantize"]["size_bytes"]
    gguf, fp32 = cells[("llama", "w4a8-gguf", "onnxruntime")], cells[
        ("llama", "fp32", "onnxruntime")]
    assert "MatMulNBits" in _ops(gguf)  # the file's Q4_0 blocks, not re-rounded:
    rise = gguf["quantize"]["accuracy"]["candidate"]["perplexity_increase_pct"]
    assert abs(rise) < 0.1, rise  # FP32 is the file dequantized, so the grid is exact
    assert gguf["quantize"]["size_bytes"] < 0.5 * fp32["quantize"]["size_bytes"]
    for key in (("bert", "w4a8-gguf", "onnxruntime"), ("llama", "fp32-fused", "onnxruntime"),
                ("llama", "int8-dynamic-fused", "onnxruntime")):
        record = cells[key]
        assert record["status"] == "not applicable", record
        assert f"{key[1]} does not apply to a " in record["note"], record["note"]
    assert "a decoder model from gguf" in cells[("llama", "fp32-fused", "onnxruntime")]["note"]
    # the decoder's KV-cache graph (GroupQueryAttention) is not OpenVINO's to run
    openvino = cells[("llama", "fp32", "openvino")]
    assert openvino["status"] == "not applicable" and "GroupQueryAttention" in openvino["note"]
    table = (out / "sweep.md").read_text()
    assert table.count("| not applicable |") == 4 and "| candidate |" in table
    assert sorted(runs["first"]["ran"]) == sorted(r["label"] for r in cells.values())
    assert runs["again"]["ran"] == []  # measured and not-applicable cells are settled
