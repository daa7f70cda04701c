"""How a decoded image becomes a model input: the geometry (resize and centre crop, or a YOLO
letterbox), the colour order, and ``(pixel * scale - mean) / std`` per channel.

Presets hold the common recipes; every part can be given instead (``frugal calibrate
--mean 0.485,0.456,0.406 --std 0.229,0.224,0.225 --scale 1/255``), and the whole of it goes
into the calibration descriptor and the set's fingerprint.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import numpy as np

from frugalml.errors import CalibrationError

# Grey of the padding around a letterboxed image (Ultralytics' value).
LETTERBOX_FILL = 114


@dataclasses.dataclass(frozen=True, slots=True)
class Preset:
    """A named recipe: centre crop ``size`` of the image resized to ``resize`` on its short
    side, then ``(pixel * scale - mean) / std``."""

    size: int
    resize: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    grayscale: bool = False
    scale: float = 1.0


PRESETS = {
    # torchvision-style ImageNet models: x/255, then per-channel mean/std.
    "imagenet": Preset(224, 256, (0.485 * 255, 0.456 * 255, 0.406 * 255),
                       (0.229 * 255, 0.224 * 255, 0.225 * 255)),
    # TFLite / EfficientNet-Lite: (x - 127) / 128.
    "tflite": Preset(224, 256, (127.0,) * 3, (128.0,) * 3),
    # Inception / MobileNet-v2 TF style: [-1, 1].
    "minus1-1": Preset(224, 256, (127.5,) * 3, (127.5,) * 3),
    # MNIST CNNs: grayscale 28x28, (x/255 - 0.1307) / 0.3081.
    "mnist": Preset(28, 28, (0.1307 * 255,), (0.3081 * 255,), grayscale=True),
    # YOLO detectors: x/255, no mean or std (use with letterbox).
    "yolo": Preset(640, 640, (0.0,) * 3, (1.0,) * 3, scale=1 / 255),
}


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Pixels:
    """The full preprocessing of one image folder."""

    size: int
    resize: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    scale: float
    grayscale: bool
    letterbox: int | None
    color: str
    layout: str

    def describe(self) -> dict[str, Any]:
        """Plain-JSON form (recorded in the descriptor and fingerprinted)."""
        return dataclasses.asdict(self)

    def apply(self, image: Any) -> np.ndarray:
        """A PIL image, decoded, to the model's float32 input (no batch axis)."""
        from PIL import Image

        image = image.convert("L" if self.grayscale else "RGB")
        if self.letterbox:
            pixels = _letterbox(image, self.letterbox)
        else:
            ratio = self.resize / min(image.size)
            image = image.resize((max(self.size, round(image.width * ratio)),
                                  max(self.size, round(image.height * ratio))), Image.BILINEAR)
            left, top = (image.width - self.size) // 2, (image.height - self.size) // 2
            pixels = np.asarray(image.crop((left, top, left + self.size, top + self.size)),
                                dtype=np.float32)
        pixels = pixels[..., None] if pixels.ndim == 2 else pixels
        if self.color == "BGR" and not self.grayscale:
            pixels = pixels[..., ::-1]
        pixels = (pixels * np.float32(self.scale) - np.array(self.mean, np.float32)) / np.array(
            self.std, np.float32)
        return np.ascontiguousarray(pixels.transpose(2, 0, 1) if self.layout == "NCHW"
                                    else pixels)


    def map_boxes(self, boxes: np.ndarray, width: int, height: int) -> np.ndarray:
        """Labelled boxes ``[K, 5]`` (x1, y1, x2, y2 in the image's pixels, class) in the
        model input's pixels after this geometry; boxes the crop cuts away are dropped."""
        boxes = np.asarray(boxes, np.float32).reshape(-1, 5).copy()
        if self.letterbox:
            ratio = self.letterbox / max(width, height)
            new_w, new_h = max(1, round(width * ratio)), max(1, round(height * ratio))
            sx, sy = new_w / width, new_h / height
            dx, dy = (self.letterbox - new_w) // 2, (self.letterbox - new_h) // 2
        else:
            ratio = self.resize / min(width, height)
            new_w = max(self.size, round(width * ratio))
            new_h = max(self.size, round(height * ratio))
            sx, sy = new_w / width, new_h / height
            dx, dy = -((new_w - self.size) // 2), -((new_h - self.size) // 2)
        side = self.letterbox or self.size
        boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]] * sx + dx, 0, side)
        boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]] * sy + dy, 0, side)
        return boxes[(boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])]


def _letterbox(image: Any, side: int) -> np.ndarray:
    """Resize the long side to ``side`` keeping the aspect, centred on a grey square."""
    from PIL import Image

    ratio = side / max(image.size)
    resized = image.resize((max(1, round(image.width * ratio)),
                            max(1, round(image.height * ratio))), Image.BILINEAR)
    fill = LETTERBOX_FILL if image.mode == "L" else (LETTERBOX_FILL,) * 3
    square = Image.new(image.mode, (side, side), fill)
    square.paste(resized, ((side - resized.width) // 2, (side - resized.height) // 2))
    return np.asarray(square, dtype=np.float32)


def parse_numbers(text: str | Sequence[float] | None, what: str) -> tuple[float, ...] | None:
    """``"0.485,0.456,0.406"``, ``"1/255"`` or a sequence, as floats (None stays None).

    Raises:
        CalibrationError: a value that is not a number.
    """
    if text is None:
        return None
    parts = text.split(",") if isinstance(text, str) else list(text)
    try:
        return tuple(float(Fraction(str(p).strip())) for p in parts)
    except (ValueError, ZeroDivisionError):
        raise CalibrationError(f"{what} {text!r} is not a number or a comma-separated list of "
                               "numbers (e.g. 0.485,0.456,0.406 or 1/255).") from None


def pixels_from(preset: str, *, size: int | None = None, resize: int | None = None,
                mean: Any = None, std: Any = None, scale: Any = None,
                letterbox: int | None = None, color: str = "RGB", layout: str = "NCHW"
                ) -> Pixels:
    """The preset with the given parts replaced; given any of ``mean``/``std``/``scale``,
    the others default to 0, 1 and 1 (``(pixel * scale - mean) / std`` as written).

    Raises:
        CalibrationError: an unknown preset, colour or layout; a mean or std whose length is
            not 1 or the channel count; a std of 0; a scale or size that is not positive;
            letterbox together with a crop or resize.
    """
    if preset not in PRESETS:
        raise CalibrationError(f"Unknown preset {preset!r}; choose one of {list(PRESETS)}.")
    color, layout = str(color).upper(), str(layout).upper()
    if color not in ("RGB", "BGR"):
        raise CalibrationError(f"--color {color.lower()!r} is not a colour order; use rgb or "
                               "bgr (OpenCV-trained models read bgr).")
    if layout not in ("NCHW", "NHWC"):
        raise CalibrationError(f"--layout {layout!r} is not a layout; use NCHW or NHWC.")
    base = PRESETS[preset]
    custom = any(v is not None for v in (mean, std, scale))
    channels = 1 if base.grayscale else 3
    means = _per_channel(parse_numbers(mean, "--mean"), channels, "--mean") if custom else None
    stds = _per_channel(parse_numbers(std, "--std"), channels, "--std") if custom else None
    scales = parse_numbers(scale, "--scale")
    problems = _geometry_problems(size, resize, letterbox)
    if stds is not None and any(s == 0 for s in stds):
        problems.append("--std has a 0 (it divides)")
    if scales is not None and (len(scales) != 1 or scales[0] <= 0):
        problems.append(f"--scale {scale!r} must be one positive number, e.g. 1/255")
    if problems:
        raise CalibrationError("Image preprocessing cannot be built: " + "; ".join(problems)
                               + ".")
    return Pixels(size=letterbox or size or base.size,
                  resize=letterbox or resize or max(base.resize, size or 0),
                  mean=means if means is not None else (base.mean if not custom else
                                                        (0.0,) * channels),
                  std=stds if stds is not None else (base.std if not custom else
                                                     (1.0,) * channels),
                  scale=scales[0] if scales else (base.scale if not custom else 1.0),
                  grayscale=base.grayscale, letterbox=letterbox, color=color, layout=layout)


def _per_channel(values: tuple[float, ...] | None, channels: int, what: str
                 ) -> tuple[float, ...] | None:
    if values is None:
        return None
    if len(values) == 1:
        return values * channels
    if len(values) != channels:
        raise CalibrationError(f"{what} has {len(values)} values; give 1 or {channels} (one "
                               f"per channel of the {'grayscale' if channels == 1 else 'RGB'} "
                               "image).")
    return values


def _geometry_problems(size: int | None, resize: int | None, letterbox: int | None
                       ) -> list[str]:
    problems = [f"{name} {v} is not a positive pixel count" for name, v in
                (("--crop", size), ("--resize", resize), ("--letterbox", letterbox))
                if v is not None and v < 1]
    if letterbox is not None and (size is not None or resize is not None):
        problems.append("--letterbox pads the whole image to a square; it takes no --crop or "
                        "--resize")
    return problems
