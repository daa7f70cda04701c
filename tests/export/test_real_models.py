"""Real models from ../shared/DATA.md through export(), checked against torch on real inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from bench._data import efficientnet_lite0, imagenet_batch, mnist_batch, mnist_net
from frugalml.export import GraphSpec, export, read_export
from frugalml.export.openvino import run_openvino, to_openvino
from frugalml.export.simplify import run_onnx
from frugalml.runtime.numerics import row_cosine

IMAGE_SPEC = GraphSpec(("image",), ("logits",), {"image": {0: "batch"}})


@pytest.fixture(scope="module")
def efficientnet_export(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """One export to OpenVINO (which keeps the validated ONNX beside the IR)."""
    model = efficientnet_lite0()
    images, labels = imagenet_batch(16)
    out = tmp_path_factory.mktemp("effnet") / "export"
    record = export(model, out, format="openvino", example={"image": images[:2]},
                    spec=IMAGE_SPEC, validation=[{"image": images[:1]}, {"image": images[8:]}])
    with torch.no_grad():
        logits = model(torch.from_numpy(images)).numpy()
    return record, images, labels, logits


@pytest.mark.parametrize("batch", [1, 8])
def test_efficientnet_onnx_and_ir_match_torch_on_imagenet(efficientnet_export: tuple,
                                                          batch: int) -> None:
    record, images, labels, logits = efficientnet_export
    onnx_path = record.path.with_suffix(".onnx")
    feeds = [{"image": images[:batch]}]
    for runtime_name, got in (("onnxruntime", run_onnx(onnx_path, feeds, ["logits"])[0]),
                              ("openvino", run_openvino(record.path, feeds, ["logits"])[0])):
        err = np.abs(got["logits"] - logits[:batch]).max()
        assert err <= 1e-4, f"{runtime_name} batch {batch}: max abs error {err:.3g}"
        assert (got["logits"].argmax(1) == logits[:batch].argmax(1)).all(), runtime_name
    # The weights are the real ImageNet ones: most of these 16 images are classified right.
    assert (logits.argmax(1) == labels).mean() >= 0.75


def test_efficientnet_record_says_what_was_written(efficientnet_export: tuple) -> None:
    record = efficientnet_export[0]
    assert record.format == "openvino" and not record.fp16_weights
    assert record.exporter.startswith("openvino.convert_model")
    assert record.inputs_used == 1 + 8 + 2
    assert all(c.passed and c.max_abs_error <= 1e-4 for c in record.checks)
    assert read_export(record.path.parent) == record
    assert record.path.with_suffix(".bin").stat().st_size > 15e6  # FP32 weights, 4.69 M params


def test_minilm_dynamic_sequence_matches_torch(tmp_path: Path) -> None:
    """5-token and 120-token sentences through one exported graph (cosine >= 0.99999)."""
    from frugalml.demo import default_model_dir
    from frugalml.export import load_encoder, tokenize

    short = "Cheap and cheerful."
    long_text = " ".join(["the film moves slowly but its ending earns every quiet minute"] * 11)
    record = export(default_model_dir(), tmp_path / "minilm", texts=[short, long_text])
    assert record.exporter == "torch.onnx.dynamo" and record.opset == 21
    tokenizer, model = load_encoder(default_model_dir())
    for text, tokens in ((short, 5), (long_text, 120)):
        feeds = tokenize(tokenizer, [text], max_length=120)
        assert feeds["input_ids"].shape[1] in range(tokens, tokens + 3)  # + [CLS] [SEP]
        with torch.no_grad():
            hidden = model(**{k: torch.from_numpy(v) for k, v in feeds.items()}).last_hidden_state
        got = run_onnx(record.path, [feeds], ["last_hidden_state"])[0]["last_hidden_state"]
        cosine = row_cosine(hidden.numpy()[0], got[0])
        assert cosine.min() >= 0.99999, f"{tokens} tokens: min cosine {cosine.min():.7f}"


def test_mnist_cnn_to_fp16_ir_halves_weights(tmp_path: Path) -> None:
    net = mnist_net()
    digits, labels = mnist_batch(256)
    record = export(net, tmp_path / "ir16", format="openvino", fp16=True,
                    example={"image": digits[:4]}, spec=IMAGE_SPEC,
                    validation=[{"image": digits}])
    fp32 = to_openvino(record.path.with_suffix(".onnx"), tmp_path / "ir32")
    ratio = record.path.with_suffix(".bin").stat().st_size / fp32.path.with_suffix(
        ".bin").stat().st_size
    assert 0.45 <= ratio <= 0.55, f"FP16 .bin is {ratio:.3f} of the FP32 one"
    assert record.fp16_weights
    with torch.no_grad():
        logits = net(torch.from_numpy(digits)).numpy()
    got = run_openvino(record.path, [{"image": digits}], ["logits"])[0]["logits"]
    # Logits reach |116|, so FP16 weight rounding (~3 significant digits) shows as ~0.03
    # absolute; relative to the logit scale, and on the probabilities, it is within 1e-3.
    relative = np.abs(got - logits).max() / np.abs(logits).max()
    assert relative <= 1e-3, f"relative error {relative:.3g}"
    assert np.abs(_softmax(got) - _softmax(logits)).max() <= 1e-3
    assert (got.argmax(1) == logits.argmax(1)).all()
    assert (got.argmax(1) == labels).mean() >= 0.97


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)
