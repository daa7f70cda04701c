"""A YOLOv8-style detector (tests/detector.py): one output concatenating boxes in pixels with
sigmoid class scores. The scoring decodes and NMSes both models' detections; range safety keeps
the output tail in float, without which ONNX Runtime puts one scale on boxes and scores."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from frugalml.errors import QuantizationError
from frugalml.quantize.api import quantize
from frugalml.quantize.recipe import get_recipe
from tests.detector import detector_batch, yolo_detector

SCORES = "output[4-6]"  # the class-score channels of the [N, 4 + 3, anchors] output


@pytest.fixture(scope="module")
def detector(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object, str]:
    """The exported detector, 400 photos (200 calibration), and its output Concat's name."""
    import onnx

    from frugalml.calibration import make_set
    from frugalml.calibration.arrays import ArraySource
    from frugalml.export import export

    root = tmp_path_factory.mktemp("detector")
    images = detector_batch(400)
    np.savez(root / "photos.npz", images=images)
    record = export(yolo_detector(), root / "fp32", example={"images": images[:1]},
                    validation=[{"images": images[:4]}])
    model = onnx.load(str(record.path))
    concat = next(n.name for n in model.graph.node if n.output[0] == model.graph.output[0].name)
    data = make_set(ArraySource({"images": images}), calibration_size=200)
    return record.path, data, concat


# NNCF's ONNX weights for x86-avx2 are 7-bit (its overflow fix; 8-bit weights saturate ONNX
# Runtime's AVX2 kernels: 81 % of the detections kept here). Measured on an AMD EPYC family 25
# model 1 (Zen 3, AVX2): 93.9 % kept at 7 bits, over the 95 % budget, which the check reports
# and deploy then ships another candidate; 97.8 % at x86-avx512's 8 bits (scored exactly).
# ONNX Runtime's 7-bit weights keep 96.1 % there. So NNCF's ONNX case names x86-avx512, and
# the others follow the host (auto), whatever CPU class CI runs on.
@pytest.mark.parametrize(("backend", "fmt", "target"), [
    ("onnxruntime", "onnx", "auto"), ("nncf", "onnx", "x86-avx512"),
    ("nncf", "openvino", "auto")])
def test_default_int8_keeps_95_percent_of_the_detections(
        detector: tuple[Path, object, str], tmp_path: Path, backend: str, fmt: str,
        target: str) -> None:
    model, data, concat = detector
    record = quantize(model, data, tmp_path / "int8", backend=backend, output_format=fmt,
                      target=target, eval_items=200, allow_over_budget=True)
    acc = record.accuracy
    failed = {c["name"] for c in acc["checks"] if not c["passed"]}
    # An IR of this 0.9 MB model is 34 % of FP32 (format overhead): over the 30 % size limit.
    assert acc["task"] == "object-detection" and failed <= (
        {"size vs FP32"} if fmt == "openvino" else set())
    assert acc["candidate"]["detection_agreement_with_fp32"] >= 0.95
    assert acc["candidate"]["fp32_detections"] > 1000  # a few per photo over 200 photos
    scores = next(p for p in acc["parts"] if p["part"] == SCORES)
    assert scores["budgeted"] and scores["mean_cosine_to_fp32"] >= 0.99
    assert concat in record.range_safety["output_tail"]
    # Every Conv, the backbone and the heads; for x86-avx2 ONNX Runtime keeps the first in float.
    first_in_float = backend == "onnxruntime" and record.int8_format == "u8s8-reduce-range"
    assert len(record.int8_activation_layers) == 11 - first_in_float


def test_without_range_safety_the_check_fails_and_names_the_score_channels(
        detector: tuple[Path, object, str], tmp_path: Path) -> None:
    model, data, _ = detector
    unsafe = get_recipe("int8", range_safe=False)
    with pytest.raises(QuantizationError) as failed:
        quantize(model, data, tmp_path / "unsafe", recipe=unsafe, eval_items=200)
    message = str(failed.value)
    assert "detection agreement with FP32" in message and f"of {SCORES}" in message
    assert not (tmp_path / "unsafe").exists()
    kept = quantize(model, data, tmp_path / "kept", recipe=unsafe, eval_items=200,
                    allow_over_budget=True).accuracy
    # The whole-tensor cosine that passed the broken model before, and what it hid:
    assert kept["candidate"]["mean_cosine_to_fp32"] >= 0.9999
    scores = next(p for p in kept["parts"] if p["part"] == SCORES)
    assert scores["mean_cosine_to_fp32"] < 0.95
    assert kept["candidate"]["detection_agreement_with_fp32"] < 0.95


def test_frugal_diagnose_finds_the_output_concat_by_itself(
        detector: tuple[Path, object, str], tmp_path: Path) -> None:
    model, _, concat = detector
    photos = model.parents[1] / "photos.npz"

    def frugal(*args: str) -> dict:
        done = subprocess.run([sys.executable, "-m", "frugalml.cli", *args, "--json"],
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        return json.loads(done.stdout)

    frugal("calibrate", str(photos), "--model", str(model), "--out", str(tmp_path / "cal"),
           "--num", "200")
    # On an AVX2 host (x86-avx2's 7-bit weights) diagnose also kept node_Conv_97 until the
    # first layer stayed float there (quantize/onnxruntime.py, _first_layers).
    result = frugal("diagnose", str(model), "--data", str(tmp_path / "cal"), "--out",
                    str(tmp_path / "fixed"), "--no-range-safety", "--eval-items", "200",
                    "--probe-items", "32")
    assert result["ranking"][0]["node"] == concat
    assert result["ignored_nodes"] == [concat]
    assert not result["baseline"]["within_budget"] and result["final"]["within_budget"]


def test_a_model_that_runs_nms_itself_is_scored_by_its_own_detections(
        detector: tuple[Path, object, str], tmp_path: Path) -> None:
    """boxes/scores/labels outputs after ONNX NonMaxSuppression, one image per call."""
    from tests.detector import with_nms

    model, data, _ = detector
    nms_model = with_nms(model, tmp_path / "nms" / "model.onnx")
    record = quantize(nms_model, data, tmp_path / "int8", eval_items=200)
    acc = record.accuracy
    assert acc["task"] == "object-detection" and acc["output"] == "boxes"
    assert acc["candidate"]["detection_agreement_with_fp32"] >= 0.95
    assert acc["candidate"]["fp32_detections"] > 1000 and not acc["parts"]
    assert "nms" in record.range_safety["output_tail"]
    with pytest.raises(QuantizationError, match="detection agreement with FP32"):
        quantize(nms_model, data, tmp_path / "unsafe", eval_items=200,
                 recipe=get_recipe("int8", range_safe=False))


def test_with_labelled_boxes_map50_is_scored_against_fp32(tmp_path: Path) -> None:
    """Photos with boxes.json: FP32's own detections as the labels, so FP32 scores mAP@0.5
    of 1 and INT8 loses what it fails to reproduce (measured on a Zen 4: 0.945, a 5.5-point
    drop, with 94 % of the detections kept after 80 calibration images)."""
    from PIL import Image

    from frugalml.calibration import make_set
    from frugalml.calibration.images import ImageFolder
    from frugalml.export import export

    images = detector_batch(160, start=400)
    folder = tmp_path / "photos"
    folder.mkdir()
    for i, image in enumerate(images):
        Image.fromarray((image.transpose(1, 2, 0) * 255).round().astype(np.uint8)).save(
            folder / f"{i:03d}.png")
    record = export(yolo_detector(), tmp_path / "fp32", example={"images": images[:1]})
    source = ImageFolder(folder, preset="yolo", letterbox=128, input_name="images")
    data = make_set(source, calibration_size=80)
    import onnxruntime as ort

    from frugalml.quantize.detection import clipped, decode

    session = ort.InferenceSession(str(record.path))
    boxes = {}
    for i, name in enumerate(source.keys()):
        found = clipped(decode(session.run(None, source.load([i]))[0], "channels-first")[0],
                        (128, 128))
        boxes[name] = np.column_stack([found.boxes, found.classes]).tolist()
    (folder / "boxes.json").write_text(json.dumps({"boxes_of_file": boxes}))
    data = make_set(ImageFolder(folder, preset="yolo", letterbox=128, input_name="images"),
                    calibration_size=80)
    acc = quantize(record.path, data, tmp_path / "int8", eval_items=80,
                   allow_over_budget=True).accuracy
    assert acc["reference"]["map50"] == pytest.approx(1.0)
    assert 0.8 <= acc["candidate"]["map50"] < 1.0, acc["candidate"]
    drop = next(c for c in acc["checks"] if c["name"] == "mAP@0.5 drop (points)")
    assert drop["value"] == pytest.approx(100 * (1.0 - acc["candidate"]["map50"]), abs=1e-6)
