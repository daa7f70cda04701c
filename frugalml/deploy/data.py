"""The deploy's DATA as a calibration set: any reader `frugal calibrate` has, with the
preprocessing options it takes, fed to the model's own inputs.

The set is written as a descriptor beside the deploy's output, so every later step (and a
re-run) reads exactly the items, split and preprocessing the first run used.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from frugalml.calibration.descriptor import DESCRIPTOR_NAME

# The reader options each kind of data takes (the rest of a CLI's flags do not apply to it).
_IMAGE = frozenset({"preset", "layout", "color", "mean", "std", "scale", "size", "resize",
                    "letterbox", "input_name", "strict"})
_ARRAYS = frozenset({"input_name"})
_TEXT = frozenset({"tokenizer", "column", "label_column", "window", "max_length"})
# Tokens per window when running text feeds a language model (one window per item).
LM_WINDOW = 128


def reader_options(data: Path, inputs: Sequence[str], given: Mapping[str, Any], *,
                   tokenizer: Path | None, language_model: bool) -> dict[str, Any]:
    """The reader's options: the user's, plus what the model decides (which input the images
    or arrays feed, its tokenizer, windows for a language model, labels from a column)."""
    kind = _IMAGE if data.is_dir() else _ARRAYS if data.suffix in (".npy", ".npz") else _TEXT
    options = {k: v for k, v in given.items() if v is not None and k in kind}
    single = inputs[0] if len(inputs) == 1 else None
    if data.is_dir() or data.suffix == ".npy":
        name = "pixel_values" if "pixel_values" in inputs else single
        if name and "input_name" not in options:
            options["input_name"] = name
        return options
    if data.suffix == ".npz":
        return options
    if tokenizer is not None:
        options.setdefault("tokenizer", str(tokenizer))
    if language_model:
        options.setdefault("window", LM_WINDOW)
    if "window" in options:  # running text cut into token windows: no columns, no labels
        return {k: v for k, v in options.items() if k not in ("column", "label_column")}
    options.setdefault("label_column", "auto")
    options.setdefault("input_names", list(inputs))
    return options


def is_descriptor(data: Any) -> bool:
    """A `frugal calibrate --out` folder or its calibration.json."""
    path = Path(data)
    return (path / DESCRIPTOR_NAME).is_file() or (path.suffix == ".json" and path.is_file())


def open_data(data: Any, inputs: Sequence[str], given: Mapping[str, Any], *,
              signature: Sequence[tuple[str, str, tuple[Any, ...]]] | None = None,
              tokenizer: Path | None, language_model: bool, calibration_items: int,
              out_dir: Path) -> tuple[Any, Path]:
    """The calibration set for ``data`` and the descriptor that pins it.

    ``signature`` (a model file's inputs) is checked against the data before anything is
    written. ``data`` is a path (image folder, .npy/.npz, text file, or a descriptor) or a set
    built in Python (anything with ``batches`` and ``fingerprint``; its descriptor is None).

    Raises:
        CalibrationError: the data cannot be read, is too small to split, or needs options
            (a tokenizer for text) the model does not provide.
    """
    from frugalml.calibration import make_set
    from frugalml.calibration.descriptor import open_descriptor, open_source, write_descriptor

    if hasattr(data, "batches") and hasattr(data, "fingerprint"):
        return data, None
    if is_descriptor(data):
        return open_descriptor(Path(data)), Path(data)
    path = Path(data).resolve()
    options = reader_options(path, inputs, given, tokenizer=tokenizer,
                             language_model=language_model)
    data_set = make_set(open_source(path, options), calibration_size=calibration_items)
    if signature:
        data_set.check_inputs(signature)  # before anything is written
    return data_set, write_descriptor(data_set, path, options, out_dir)
