"""`frugal calibrate` for any image model: colour order, mean/std/scale, crop or letterbox and
the input name, recorded in the descriptor; folder labels in natural order, printed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from frugalml.calibration.descriptor import read_descriptor
from frugalml.calibration.images import ImageFolder, natural_key
from frugalml.cli import main
from tests.robustness.makers import conv_model


def _solid(folder: Path, name: str, size: tuple[int, int], rgb: tuple[int, int, int]) -> None:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, rgb).save(folder / name)


def test_mean_std_scale_and_colour_order_follow_the_formula(tmp_path: Path) -> None:
    _solid(tmp_path / "imgs", "a.png", (40, 40), (100, 150, 200))
    folder = ImageFolder(tmp_path / "imgs", size=32, scale="1/255", mean="0.5",
                         std="0.25,0.5,1", color="bgr")
    pixels = folder.load([0])["image"][0]
    assert pixels.shape == (3, 32, 32)
    expected = (np.array([200, 150, 100]) / 255 - 0.5) / np.array([0.25, 0.5, 1.0])
    np.testing.assert_allclose(pixels[:, 0, 0], expected, rtol=1e-6)
    described = folder.describe()
    assert described["color"] == "BGR" and tuple(described["std"]) == (0.25, 0.5, 1.0)


def test_letterbox_keeps_the_aspect_and_pads_with_grey(tmp_path: Path) -> None:
    _solid(tmp_path / "imgs", "wide.png", (200, 100), (255, 0, 0))
    pixels = ImageFolder(tmp_path / "imgs", preset="yolo", letterbox=64).load([0])["image"][0]
    assert pixels.shape == (3, 64, 64)
    grey = 114 / 255
    np.testing.assert_allclose(pixels[:, 0, 32], [grey] * 3, rtol=1e-6)  # padding above
    np.testing.assert_allclose(pixels[:, 32, 32], [1.0, 0.0, 0.0])  # the image, centred
    rows = np.flatnonzero(pixels[1, :, 32] < grey / 2)  # green is 0 inside the image only
    assert rows.min() == 16 and rows.max() == 47  # 200x100 -> 64x32, centred


def test_folder_labels_are_in_natural_order_and_printed(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture) -> None:
    for angle in ("0", "90", "180", "270"):
        for i in range(3):
            _solid(tmp_path / "pages" / angle, f"{i}.png", (40, 40), (i * 40, int(angle) % 255,
                                                                      7))
    assert sorted(["0", "180", "270", "90"], key=natural_key) == ["0", "90", "180", "270"]
    model = conv_model(tmp_path / "conv.onnx", side=32)
    assert main(["calibrate", str(tmp_path / "pages"), "--model", str(model), "--out",
                 str(tmp_path / "cal"), "--num", "6", "--crop", "32", "--mean", "127.5",
                 "--std", "127.5", "--color", "rgb"]) == 0
    out = capsys.readouterr().out
    assert "labels from folder names (natural order): 0=0, 1=90, 2=180, 3=270" in out
    assert "inputs match the model" in out  # its only input, 'images', named for us
    descriptor = json.loads((tmp_path / "cal" / "calibration.json").read_text())
    assert descriptor["options"].items() >= {"mean": "127.5", "std": "127.5", "size": 32,
                                             "color": "rgb", "input_name": "images"}.items()
    rebuilt = read_descriptor(tmp_path / "cal" / "calibration.json")
    assert rebuilt.fingerprint == descriptor["fingerprint"]
    labels = dict(zip(rebuilt.source.keys(), rebuilt.source.labels(), strict=True))
    assert labels["90/0.png"] == 1 and labels["270/2.png"] == 3


def test_calibrate_help_shows_the_defaults(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main(["calibrate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: 300)" in text and "must not be empty" in text


def test_num_equal_to_the_set_says_the_evaluation_part_is_needed(tmp_path: Path) -> None:
    from frugalml.calibration import from_items, make_set
    from frugalml.errors import CalibrationError

    items = [{"x": np.full(3, i, np.float32)} for i in range(10)]
    with pytest.raises(CalibrationError, match="evaluation part .* cannot be empty"):
        make_set(from_items(items), calibration_size=10)
