"""Image folders as calibration sources, with the preprocessing the model was trained with
(:mod:`frugalml.calibration.pixels`).

Labels come from sub-folder names (in natural order: ``0, 90, 180, 270``), a ``labels.json``
(``{"label_of_file": {...}}`` or a flat ``{file: index}``) or a two-column CSV, or there are
none. Images are decoded per batch, so a
folder of any size streams in bounded memory.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from frugalml.calibration.pixels import PRESETS, pixels_from
from frugalml.errors import CalibrationError, require

__all__ = ["IMAGE_SUFFIXES", "PRESETS", "ImageFolder", "natural_key"]

BOXES_NAME = "boxes.json"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff")


class ImageFolder:
    """A folder of images; one item per decodable image file, in sorted path order."""

    kind = "images"

    def __init__(self, root: Path, *, preset: str = "imagenet", labels: str | Path | None =
                 "auto", layout: str = "NCHW", color: str = "RGB", input_name: str = "image",
                 size: int | None = None, resize: int | None = None, mean: Any = None,
                 std: Any = None, scale: Any = None, letterbox: int | None = None,
                 strict: bool = False) -> None:
        """List (not decode) the images under ``root``; ``size`` is the centre crop, the
        rest is :func:`~frugalml.calibration.pixels.pixels_from`'s.

        Raises:
            CalibrationError: missing or empty folder, preprocessing that cannot be built, a
                non-image file under ``strict``, or a labels file that does not cover them.
        """
        require("PIL", extra="toolchain")
        self.root = Path(root)
        if not self.root.is_dir():
            raise CalibrationError(f"{self.root} is not a folder of images.")
        self.preset_name = preset
        self.pixels = pixels_from(preset, size=size, resize=resize, mean=mean, std=std,
                                  scale=scale, letterbox=letterbox, color=color, layout=layout)
        self.input_name, self.strict = input_name, strict
        self.label_names: tuple[str, ...] = ()
        self.files, self.skipped = self._list_images()
        self._labels = self._read_labels(labels)
        self._boxes = _read_boxes(self.root / BOXES_NAME, self.keys())

    def _list_images(self) -> tuple[list[Path], list[str]]:
        files, skipped = [], []
        for path in sorted(p for p in self.root.rglob("*") if p.is_file()):
            if path.suffix.lower() in IMAGE_SUFFIXES and _readable_header(path):
                files.append(path)
            elif path.name not in ("labels.json", "labels.csv", BOXES_NAME, "README.md"):
                skipped.append(str(path.relative_to(self.root)))
        if skipped and self.strict:
            raise CalibrationError(
                f"{len(skipped)} files under {self.root} are not readable images (first: "
                f"{skipped[0]}). Remove them, or drop --strict to skip them.")
        return files, skipped

    def _read_labels(self, labels: str | Path | None) -> tuple[int | None, ...]:
        names = [str(p.relative_to(self.root)) for p in self.files]
        if labels is None:
            return (None,) * len(names)
        if labels == "auto":
            for candidate in (self.root / "labels.json", self.root / "labels.csv"):
                if candidate.is_file():
                    return self._read_labels(candidate)
            folders = sorted({Path(n).parent.as_posix() for n in names} - {"."},
                             key=natural_key)
            if not folders:
                return (None,) * len(names)
            self.label_names = tuple(folders)
            index = {f: i for i, f in enumerate(folders)}
            return tuple(index.get(Path(n).parent.as_posix()) for n in names)
        mapping = _label_mapping(Path(labels))
        missing = [n for n in names if n not in mapping]
        if missing:
            raise CalibrationError(f"{labels} has no label for {len(missing)} images (first: "
                                   f"{missing[0]}). Complete it, or pass labels=None.")
        return tuple(int(mapping[n]) for n in names)

    def boxes(self, indices: Sequence[int]) -> list[np.ndarray] | None:
        """Labelled boxes of these images in model-input pixels (``[K, 5]`` each: x1, y1,
        x2, y2, class), from ``boxes.json``; None when the folder has none."""
        if self._boxes is None:
            return None
        from PIL import Image

        found = []
        for i in indices:
            with Image.open(self.files[i]) as im:
                size = im.size
            found.append(self.pixels.map_boxes(self._boxes[i], *size))
        return found

    def keys(self) -> tuple[str, ...]:
        """Relative paths: an image's identity does not depend on the other files."""
        return tuple(str(p.relative_to(self.root)) for p in self.files)

    def labels(self) -> tuple[int | None, ...]:
        """Class index per image, or None."""
        return self._labels

    def describe(self) -> dict[str, Any]:
        """Folder and preprocessing."""
        return {"path": str(self.root), "preset": self.preset_name, **self.pixels.describe(),
                "input_name": self.input_name, "skipped_files": len(self.skipped),
                **({"label_names": list(self.label_names)} if self.label_names else {})}

    def content_digest(self) -> str:
        """sha256 over the label files and every image's path and bytes, streamed."""
        h = hashlib.sha256()
        for extra in ("labels.json", "labels.csv", BOXES_NAME):  # labels are data too
            if (self.root / extra).is_file():
                h.update(extra.encode() + b"\0" + (self.root / extra).read_bytes())
        for path in self.files:
            h.update(str(path.relative_to(self.root)).encode() + b"\0")
            with path.open("rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
        return h.hexdigest()

    def load(self, indices: Sequence[int]) -> dict[str, np.ndarray]:
        """Decode, resize (short side), centre-crop, scale and lay out these images.

        Raises:
            CalibrationError: no indices, or an image that cannot be decoded.
        """
        if not len(indices):
            raise CalibrationError(f"No images were asked for from {self.root}; pass at least "
                                   "one index.")
        return {self.input_name: np.stack([self._one(self.files[i]) for i in indices])}

    def _one(self, path: Path) -> np.ndarray:
        from PIL import Image

        try:
            with Image.open(path) as im:
                return self.pixels.apply(im)
        except OSError as e:
            raise CalibrationError(f"Cannot decode {path}: {e}. The file is truncated or not "
                                   "an image: remove it from the folder.") from e


def natural_key(name: str) -> list[Any]:
    """Sort key reading digit runs as numbers: ``0, 90, 180, 270``, not ``0, 180, 270, 90``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _read_boxes(path: Path, names: tuple[str, ...]) -> list[np.ndarray] | None:
    """Per image its labelled boxes from ``boxes.json`` (``{"boxes_of_file": {file: [[x1, y1,
    x2, y2, class], ...]}}``, image pixels; an image not listed has none), or None.

    Raises:
        CalibrationError: the file is not of that form.
    """
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        table = data.get("boxes_of_file", data)
        boxes = [np.asarray(table.get(n, []), np.float32).reshape(-1, 5) for n in names]
    except (ValueError, AttributeError, TypeError) as e:
        raise CalibrationError(f"Cannot read boxes from {path}: {e}. Write "
                               '{"boxes_of_file": {"img.jpg": [[x1, y1, x2, y2, class], ...]}} '
                               "in the image's pixels.") from e
    return boxes


def _readable_header(path: Path) -> bool:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return im.size[0] > 0
    except (UnidentifiedImageError, OSError):
        return False


def _label_mapping(path: Path) -> dict[str, int]:
    if not path.is_file():
        raise CalibrationError(f"Labels file {path} does not exist.")
    try:
        if path.suffix == ".json":
            data = json.loads(path.read_text())
            return dict(data.get("label_of_file", data))
        with path.open(newline="") as f:
            return {row[0]: int(row[1]) for row in csv.reader(f) if len(row) >= 2
                    and row[1].strip().lstrip("-").isdigit()}
    except (ValueError, AttributeError) as e:
        raise CalibrationError(f"Cannot read labels from {path}: {e}. Use JSON "
                               "{file: class_index} or CSV rows 'file,class_index'.") from e
