"""The deploy's DATA as a calibration set: any reader `frugal calibrate` has, with the
preprocessing options it takes, fed to the model's own inputs.

The set is written as a descriptor beside the deploy's output, so every later step (and a
re-run) reads exactly the items, split and preprocessing the first run used.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from frugalml.calibration.descriptor import (
    DESCRIPTOR_NAME,
    open_descriptor,
    open_set,
    write_descriptor,
)
from frugalml.calibration.streams import has_roles
from frugalml.quantize.api import signature
from frugalml.runtime.formats import is_ir, is_onnx
from frugalml.runtime.roles import parse_roles

# The reader options each kind of data takes (the rest of a CLI's flags do not apply to it).
_IMAGE = frozenset({"preset", "layout", "color", "mean", "std", "scale", "size", "resize",
                    "letterbox", "input_name", "strict"})
_ARRAYS = frozenset({"input_name"})
_TEXT = frozenset({"tokenizer", "column", "label_column", "window", "max_length"})
# Tokens per window when running text feeds a language model (one window per item).
LM_WINDOW = 128


def reader_options(data: Path, inputs: Sequence[str], given: Mapping[str, Any], *,
                   tokenizer: Path | None, language_model: bool, model: Path | None = None
                   ) -> dict[str, Any]:
    """The reader's options: the user's, plus what the model decides (which input the images
    or arrays feed, its tokenizer, windows for a language model, labels from a column, the
    roles of a streaming model's inputs).

    Raises:
        InputError: a role flag is malformed.
    """
    stream = stream_options(data, dict(given), model) if data.suffix == ".npz" or (
        data.is_dir() and given.get("chunk")) else {}
    if stream or data.suffix == ".npz":
        return stream
    kind = _IMAGE if data.is_dir() else _ARRAYS if data.suffix == ".npy" else _TEXT
    options = {k: v for k, v in given.items() if v is not None and k in kind}
    single = inputs[0] if len(inputs) == 1 else None
    if data.is_dir() or data.suffix == ".npy":
        name = "pixel_values" if "pixel_values" in inputs else single
        if name and "input_name" not in options:
            options["input_name"] = name
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


def stream_options(data: Path, given: dict[str, Any], model: Path | None) -> dict[str, Any]:
    """An .npz's or a recordings folder's options: none for plain arrays; for a stream set
    (roles given as flags or in an .npz's ``__roles__`` entry; a folder given --chunk) the
    roles, the model they belong to, threshold, decision, and a folder's chunking.

    Raises:
        InputError: a role flag is malformed.
    """
    roles = parse_roles(state=given.get("state") or (), constant=given.get("constant") or (),
                        batch_axis=given.get("batch_axis") or ())
    if not roles and not (data.suffix == ".npz" and has_roles(data)) and not data.is_dir():
        return {}
    where = None if model is None else str(Path(model).resolve())
    return {"roles": roles.to_dict(), "model": where, "threshold": given.get("threshold"),
            "decision": given.get("decision"), "chunk": given.get("chunk"),
            "sample_rate": given.get("sample_rate")}


def is_descriptor(data: Any) -> bool:
    """A `frugal calibrate --out` folder or its calibration.json."""
    path = Path(data)
    return (path / DESCRIPTOR_NAME).is_file() or (path.suffix == ".json" and path.is_file())


def open_data(data: Any, inputs: Sequence[str], given: Mapping[str, Any], *,
              signature: Sequence[tuple[str, str, tuple[Any, ...]]] | None = None,
              tokenizer: Path | None, language_model: bool, calibration_items: int,
              out_dir: Path, model: Path | None = None) -> tuple[Any, Path]:
    """The calibration set for ``data`` and the descriptor that pins it.

    ``signature`` (a model file's inputs) is checked against the data before anything is
    written. ``model`` is the .onnx file whose input roles stream data follows. ``data`` is a
    path (image folder, .npy/.npz, text file, or a descriptor) or a set
    built in Python (anything with ``batches`` and ``fingerprint``; its descriptor is None).

    Raises:
        CalibrationError: the data cannot be read, is too small to split, or needs options
            (a tokenizer for text) the model does not provide.
    """
    if hasattr(data, "batches") and hasattr(data, "fingerprint"):
        return data, None
    if is_descriptor(data):
        return open_descriptor(Path(data)), Path(data)
    path = Path(data).resolve()
    options = reader_options(path, inputs, given, tokenizer=tokenizer,
                             language_model=language_model, model=model)
    data_set = open_set(path, options, calibration_size=calibration_items)
    if signature:
        data_set.check_inputs(signature)  # before anything is written
    return data_set, write_descriptor(data_set, path, options, out_dir)


def signature_of(model: Any) -> list[tuple[str, str, tuple[Any, ...]]] | None:
    """The inputs of an ONNX or IR model file, to check the data against before any work."""
    if not isinstance(model, (str, Path)) or not (is_onnx(model) or is_ir(model)):
        return None

    return signature(Path(model))


def model_file(model: Any) -> Path | None:
    """``model`` when it is an ONNX file (the one stream data's input roles belong to)."""
    return Path(model) if isinstance(model, (str, Path)) and is_onnx(model) else None
