"""Calibration sources on real data: ImageNet images, MNIST arrays, review texts."""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from bench._data import IMAGENET, efficientnet_lite0, imagenet_batch, mnist_batch
from frugalml.calibration import (
    ImageFolder,
    TextSource,
    from_items,
    make_set,
    read_arrays,
    top1_agreement,
    top_k_accuracy,
)
from frugalml.errors import CalibrationError


def test_efficientnet_top1_on_the_imagenet_evaluation_part() -> None:
    """FP32 top-1 with its standard error, recomputed from the images every run."""
    data = make_set(ImageFolder(IMAGENET, preset="tflite"), calibration_fraction=0.1)
    summary = data.summary()
    assert summary["calibration_items"] + summary["evaluation_items"] == 1000
    model = efficientnet_lite0()
    logits, labels = [], []
    with torch.no_grad():
        for feeds, y in data.batches("evaluation", batch_size=50, limit=200):
            logits.append(model(torch.from_numpy(feeds["image"])).numpy())
            labels.append(y)
    top1 = top_k_accuracy(np.concatenate(logits), np.concatenate(labels), k=1)
    top5 = top_k_accuracy(np.concatenate(logits), np.concatenate(labels), k=5)
    # EfficientNet-Lite0 is ~75 % on ImageNet val; these one-per-class samples measure ~87 %.
    assert top1.count == 200 and 0.65 <= top1.value <= 0.97
    assert top1.stderr == pytest.approx(math.sqrt(top1.value * (1 - top1.value) / 200))
    assert top5.value > top1.value
    print(f"EfficientNet-Lite0 FP32 top-1 {top1.value:.3f} +/- {top1.stderr:.3f}, "
          f"top-5 {top5.value:.3f} on {top1.count} images")


def test_preset_matches_the_reference_preprocessing() -> None:
    source = ImageFolder(IMAGENET, preset="tflite")
    images, labels = imagenet_batch(4)
    np.testing.assert_allclose(source.load(range(4))["image"], images, atol=1e-5)
    assert source.labels()[:4] == tuple(labels)


def test_image_split_is_stable_when_ten_images_are_added(tmp_path: Path) -> None:
    names = sorted(p.name for p in IMAGENET.glob("*.jpg"))
    folder = tmp_path / "images"
    folder.mkdir()
    for name in names[:990]:
        os.symlink(IMAGENET / name, folder / name)
    before = make_set(ImageFolder(folder, labels=None), calibration_fraction=0.1)
    for name in names[990:]:
        os.symlink(IMAGENET / name, folder / name)
    after = make_set(ImageFolder(folder, labels=None), calibration_fraction=0.1)
    keys_after = after.source.keys()
    cal_after = {keys_after[i] for i in after.split.calibration}
    cal_before = {before.source.keys()[i] for i in before.split.calibration}
    assert cal_before == cal_after - set(names[990:])
    assert before.fingerprint != after.fingerprint  # content changed


def test_mnist_arrays_and_review_texts_share_the_interface(tmp_path: Path) -> None:
    from frugalml.calibration import rotten_tomatoes_file
    from frugalml.calibration.reviews import read_reviews
    from frugalml.demo import default_model_dir

    digits, labels = mnist_batch(500)
    np.savez(tmp_path / "mnist.npz", image=digits, labels=labels)
    arrays = make_set(read_arrays(tmp_path / "mnist.npz"), calibration_size=100)
    feeds, y = next(arrays.batches("evaluation", batch_size=32))
    assert feeds["image"].shape == (32, 1, 28, 28) and y.min() >= 0
    arrays.check_inputs([("image", "float32", ("batch", 1, 28, 28))])

    reviews = list(read_reviews(rotten_tomatoes_file()))[:300]
    with (tmp_path / "reviews.jsonl").open("w") as f:
        for r in reviews:
            f.write(json.dumps({"text": r.text, "label": r.label}) + "\n")
    texts = make_set(TextSource(tmp_path / "reviews.jsonl", default_model_dir(),
                                label_column="label"), calibration_size=50)
    feeds, y = next(texts.batches("calibration", batch_size=8))
    assert set(feeds) == {"input_ids", "attention_mask", "token_type_ids"} and len(y) == 8
    assert feeds["input_ids"].shape[1] <= 128
    summary = texts.summary()
    assert summary["calibration_items"] == 50 and summary["calibration_fingerprint"]


def test_top1_agreement_counts_items() -> None:
    ref = np.eye(4)[[0, 1, 2, 3]]
    cand = np.eye(4)[[0, 1, 2, 0]]
    m = top1_agreement(ref, cand)
    assert (m.value, m.count) == (0.75, 4)


@pytest.mark.parametrize("case", ["empty-folder", "non-image", "strict", "no-column",
                                  "pickle", "too-small", "mismatch", "nan", "no-items"])
def test_bad_calibration_inputs(tmp_path: Path, case: str) -> None:
    folder = tmp_path / "f"
    folder.mkdir()
    if case == "empty-folder":
        with pytest.raises(CalibrationError, match="holds no items"):
            make_set(ImageFolder(folder), calibration_size=1)
    elif case in ("non-image", "strict"):
        shutil.copy(IMAGENET / "n01440764.jpg", folder / "a.jpg")
        shutil.copy(IMAGENET / "n01443537.jpg", folder / "b.jpg")
        (folder / "notes.jpg").write_text("not an image")
        if case == "strict":
            with pytest.raises(CalibrationError, match="not readable images.*drop --strict"):
                ImageFolder(folder, strict=True)
        else:
            source = ImageFolder(folder)
            assert len(source.keys()) == 2 and source.skipped == ["notes.jpg"]
            assert source.describe()["skipped_files"] == 1
    elif case == "no-column":
        (folder / "t.csv").write_text("review,score\ngood,1\n")
        from frugalml.demo import default_model_dir

        with pytest.raises(CalibrationError, match=r"no column 'text'.*\['review', 'score'\]"):
            TextSource(folder / "t.csv", default_model_dir())
    elif case == "pickle":
        np.save(folder / "x.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
        with pytest.raises(CalibrationError, match="never loads"):
            read_arrays(folder / "x.npy")
    elif case == "too-small":
        source = from_items([{"x": np.ones(3, np.float32) * i} for i in range(5)])
        with pytest.raises(CalibrationError, match="holds 5 distinct items"):
            make_set(source, calibration_size=5)
    elif case == "mismatch":
        data = make_set(from_items([{"x": np.ones(3, np.float32) * i} for i in range(5)]),
                        calibration_size=2)
        with pytest.raises(CalibrationError, match=r"'x' is float32, the model expects int64.*"
                                                   r"'x' has shape \(1, 3\), the model expects"):
            data.check_inputs([("x", "int64", ("batch", 4))])
    elif case == "nan":
        rows = [{"x": np.array([i, np.nan if i == 3 else 0], np.float32)} for i in range(6)]
        with pytest.raises(CalibrationError, match=r"'x' of rows 0\.\.5 .* 1 NaN/Inf"):
            from_items(rows)
    else:
        with pytest.raises(CalibrationError, match="empty"):
            from_items([])


def test_mnist_preset_on_png_digits_matches_the_training_normalisation(tmp_path: Path) -> None:
    from PIL import Image

    digits, labels = mnist_batch(20)
    pixels = np.round((digits[:, 0] * 0.3081 + 0.1307) * 255).astype(np.uint8)
    for i, (image, label) in enumerate(zip(pixels, labels, strict=True)):
        (tmp_path / str(label)).mkdir(exist_ok=True)
        Image.fromarray(image).save(tmp_path / str(label) / f"{i:02d}.png")
    source = ImageFolder(tmp_path, preset="mnist")
    order = [int(Path(k).stem) for k in source.keys()]
    loaded = source.load(range(20))["image"]
    np.testing.assert_allclose(loaded, digits[order], atol=1e-5)
    classes = sorted({str(v) for v in labels})
    assert [classes[c] for c in source.labels()] == [str(labels[i]) for i in order]
    nhwc = ImageFolder(tmp_path, preset="mnist", layout="NHWC").load([0])["image"]
    assert nhwc.shape == (1, 28, 28, 1)
