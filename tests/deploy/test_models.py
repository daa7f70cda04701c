"""`deploy` on each kind of model and data it takes: an ONNX image classifier with an image
folder and an OpenVINO IR with an .npz (CLI), a torch module with an .npz (Python). Each test
checks the candidates tried, the choice against the measured numbers, the shipped bundle's
accuracy recomputed from the bundle on the same evaluation items, and the reports."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench._data import IMAGENET, mnist_batch, mnist_net
from frugalml.cli import main
from frugalml.deploy.result import CandidateResult
from frugalml.deploy.select import select_elsewhere, select_native


def _deploy_cli(capsys: pytest.CaptureFixture, *argv: str) -> dict:
    """deploy.json from stdout; with --json the progress still goes to stderr."""
    capsys.readouterr()
    assert main(["deploy", *argv, "--json"]) == 0
    out = capsys.readouterr()
    assert "done export and check against the source" in out.err
    return json.loads(out.out)


def _check_choice(record: dict) -> dict:
    """The one target's result, after checking its choice follows its numbers."""
    (target,) = record["targets"].values()
    quantized = [CandidateResult.from_dict(c) for c in target["candidates"]
                 if c["name"] != "fp32"]
    if target["native"]:
        shipped, why = select_native(quantized)
        assert target["why"].startswith(why)
    else:
        shipped, _ = select_elsewhere(quantized, "")
    assert target["shipped"] == shipped and Path(target["bundle"]).is_dir()
    assert Path(record["report_md"]).is_file() and Path(record["report_html"]).is_file()
    assert f"ships {shipped}" in Path(record["report_md"]).read_text()
    return target


def _top1_from_bundle(bundle: Path, data: object, items: int, output: str) -> float:
    """Top-1 accuracy of a bundle on the first ``items`` evaluation items, via the runtime."""
    from frugalml import runtime

    hits = total = 0
    with runtime.load(bundle) as model:
        for feeds, labels in data.batches("evaluation", batch_size=16, limit=items):
            hits += int((model.run(feeds)[output].argmax(1) == labels).sum())
            total += len(labels)
    assert total == items
    return hits / total


def _recomputed(out: Path, target: dict, items: int, output: str) -> None:
    """Shipped and FP32 top-1, recomputed from their bundles, equal what deploy.json says."""
    from frugalml.calibration.descriptor import open_descriptor

    data = open_descriptor(out / "calibration")
    for c in target["candidates"]:
        if c["name"] in ("fp32", target["shipped"]) and c["bundle"]:
            value = c["accuracy"]["value"]
            assert c["accuracy"]["metric"] == "top1_accuracy"
            assert _top1_from_bundle(Path(c["bundle"]), data, items, output) == pytest.approx(
                value, abs=0.005), c["name"]


def test_onnx_image_classifier_with_an_image_folder(effnet_onnx: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "out"
    record = _deploy_cli(capsys, str(effnet_onnx), str(IMAGENET), "--preset", "tflite",
                         "--num", "100", "--eval-items", "200", "--profile-runs", "20",
                         "--candidates", "int8-static,int8-openvino", "--out", str(out))
    assert record["task"] == "classification" and record["family"] == "cnn"
    target = _check_choice(record)
    assert [c["name"] for c in target["candidates"]] == ["fp32", "int8-static", "int8-openvino"]
    fp32 = target["candidates"][0]
    assert fp32["accuracy"]["value"] > 0.7  # real labels from labels.json, real preprocessing
    for c in target["candidates"][1:]:
        assert c["status"] == "scored" and c["accuracy"]["items"] == 200, c
        assert c["size_bytes"] < 0.3 * fp32["size_bytes"]
    assert target["candidates"][2]["backend"] == "nncf"
    if target["candidates"][2]["bundle"]:  # NNCF's QDQ ONNX, bundled as IR for OpenVINO
        manifest = Path(target["candidates"][2]["bundle"]) / "manifest.json"
        assert json.loads(manifest.read_text())["model_file"] == "model.xml"
    _recomputed(out, target, 200, "logits")


def _digits(path: Path, count: int = 600) -> tuple[Path, np.ndarray]:
    x, y = mnist_batch(count)
    np.savez(path, input=x, labels=y)
    return path, x


def _check_ranking(target: dict, report: str) -> None:
    """Each candidate timed at the workload is timed at batch 1 too, and the report says
    which was fastest at each and whether they differ."""
    timed = [c for c in target["candidates"][1:] if c["speed"].get("settings")]
    for c in timed:
        assert c["speed_at_batch_1"]["settings"]["input_shapes"] == {"input": [1, 1, 28, 28]}
    both = [c for c in timed if c["speed"]["ratio_p50"] and c["speed_at_batch_1"]["ratio_p50"]]
    if not both:  # a machine too busy to give a ratio at either shape: nothing to rank
        assert "workload_ranking" not in target
        return
    ranking = target["workload_ranking"]
    fastest = max(both, key=lambda c: c["speed"]["ratio_p50"])
    at_1 = max(both, key=lambda c: c["speed_at_batch_1"]["ratio_p50"])
    assert (ranking["fastest"], ranking["fastest_at_batch_1"]) == (fastest["name"], at_1["name"])
    assert ranking["workload"] == "batch 4"
    assert ranking["differs"] == (fastest["name"] != at_1["name"])
    assert f"Ranking by workload: at batch 4, {fastest['name']}" in report


def test_torch_module_cnn_with_an_npz_from_python(tmp_path: Path) -> None:
    """A CNN deployed from Python, its candidates timed at the user's workload (batch 4)."""
    import frugalml
    from frugalml.deploy import DeployOptions
    from frugalml.deploy.candidates import CNN, candidates_for
    from frugalml.runtime.workload import Workload
    from frugalml.targets import detect

    data, x = _digits(tmp_path / "digits.npz")
    result = frugalml.deploy(mnist_net(), data, tmp_path / "out", DeployOptions(
        calibration_items=200, eval_items=400, profile_runs=20, workload=Workload(batch=4)),
        example={"input": x[:2]}, quiet=True)
    record = result.record
    assert record["model"] == "MNISTNet" and record["task"] == "classification"
    target = _check_choice(record)
    # int8-static everywhere; on an AMX CPU also OpenVINO's INT8 and bf16 (from capabilities)
    expected = [c.name for c in candidates_for(CNN, detect(), ("default",))]
    assert [c["name"] for c in target["candidates"]] == ["fp32", *expected]
    assert record["workload"] == {"batch": 4, "sequence_length": None, "shapes": {}}
    assert "Timed at batch 4" in Path(record["report_md"]).read_text()
    timed = [c["speed"]["settings"] for c in target["candidates"][1:]
             if c["speed"].get("settings")]
    assert timed and all(s["input_shapes"] == {"input": [4, 1, 28, 28]} for s in timed)
    _check_ranking(target, Path(record["report_md"]).read_text())
    assert ('class="ranking"' in Path(record["report_html"]).read_text()) == (
        "workload_ranking" in target)
    assert target["candidates"][0]["accuracy"]["value"] > 0.95  # a trained digit classifier
    _recomputed(tmp_path / "out", target, 400, record["export"]["output_names"][0])


def test_openvino_ir_with_an_npz(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from frugalml.export import export

    data, x = _digits(tmp_path / "digits.npz")
    ir = export(mnist_net(), tmp_path / "ir", format="openvino", example={"input": x[:2]})
    xml = ir.path if ir.path.suffix == ".xml" else ir.path.with_suffix(".xml")
    out = tmp_path / "out"
    record = _deploy_cli(capsys, str(xml), str(data), "--num", "200", "--eval-items", "400",
                         "--profile-runs", "20", "--out", str(out))
    target = _check_choice(record)
    assert [c["name"] for c in target["candidates"]] == ["fp32", "int8-openvino"]
    for c in target["candidates"]:
        if c["bundle"]:
            manifest = json.loads((Path(c["bundle"]) / "manifest.json").read_text())
            assert manifest["model_file"] == "model.xml", c["name"]
    int8 = target["candidates"][1]
    assert int8["status"] == "scored" and int8["accuracy"]["items"] == 400
    assert record["model"] == "ir"  # named after the folder of its model.xml
    _recomputed(out, target, 400, record["export"]["output_names"][0])


def test_a_gpu_target_gets_fp16_verified_as_far_as_this_host_can(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from frugalml.export import export
    from frugalml.targets.support import Probes

    if Probes.read().intel_gpu:
        pytest.skip("this host has an Intel GPU: the bundle would be verified natively")
    data, x = _digits(tmp_path / "digits.npz", 300)
    onnx = export(mnist_net(), tmp_path / "exp", example={"input": x[:2]}).path
    record = _deploy_cli(capsys, str(onnx), str(data), "--targets", "igpu", "--num", "100",
                         "--eval-items", "200", "--out", str(tmp_path / "out"))
    target = _check_choice(record)
    assert not target["native"] and [c["name"] for c in target["candidates"]] == ["fp32", "fp16"]
    fp16 = target["candidates"][1]
    assert fp16["accuracy"]["budget_met"], fp16["accuracy"]
    assert target["shipped"] == "fp16" and "speed was not measured here" in target["why"]
    assert fp16["verified"].startswith("not verified here: missing an Intel GPU")
    assert fp16["speed"]["verdict"] == "not measured"
