"""Open any supported data path as a source, and save/reload a set as a JSON descriptor.

The descriptor records how to rebuild the set (path and options) and its fingerprint; reading
it rebuilds the set and refuses it if the data or preprocessing changed since.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from frugalml.calibration.arrays import read_arrays
from frugalml.calibration.dataset import CalibrationSet, Source, make_set
from frugalml.calibration.images import ImageFolder
from frugalml.calibration.split import ORDER
from frugalml.calibration.streams import stream_set
from frugalml.calibration.textfile import TextSource
from frugalml.calibration.windows import TokenWindows
from frugalml.core.records import write_json_atomic
from frugalml.errors import CalibrationError
from frugalml.runtime.roles import InputRoles

DESCRIPTOR_NAME = "calibration.json"
_TEXT_SUFFIXES = (".csv", ".jsonl", ".txt")
# Options that make an .npz a stream set for a model with input roles (see streams.py).
STREAM_OPTIONS = ("roles", "model", "threshold", "decision", "chunk", "sample_rate")


def open_set(data: Path, options: dict[str, Any], *, calibration_size: int | None = None,
             calibration_fraction: float | None = None, salt: str = "frugalml"
             ) -> CalibrationSet | Any:
    """The set ``data`` holds, split: a :class:`CalibrationSet`, or for data with input roles
    (``roles`` and the ``model`` they belong to in ``options``) a stream set.

    Raises:
        CalibrationError, InputError: see :func:`open_source` and
            :func:`frugalml.calibration.streams.stream_set`.
    """
    if options.get("roles") is None:
        return make_set(open_source(data, options), calibration_size=calibration_size,
                        calibration_fraction=calibration_fraction, salt=salt)
    unknown = sorted(set(options) - set(STREAM_OPTIONS))
    if unknown:
        raise CalibrationError(f"Options {unknown} do not apply to stream data {data}.")
    if options.get("model") is None:
        raise CalibrationError(f"Stream data {data} needs the .onnx model its roles belong to.")
    return stream_set(Path(data), InputRoles.from_dict(options["roles"]), Path(options["model"]),
                      calibration_size=calibration_size, salt=salt,
                      calibration_fraction=calibration_fraction,
                      threshold=float(options.get("threshold") or 0.5),
                      decision=options.get("decision"), chunk=options.get("chunk"),
                      sample_rate=options.get("sample_rate"))


def open_source(data: Path, options: dict[str, Any]) -> Source:
    """Pick the reader from the path: a folder of images, .npy/.npz arrays, or a text file.

    ``options`` are the reader's keyword arguments (``preset``, ``layout``, ``tokenizer``,
    ``column``, ...); unknown ones are refused. A text file with a ``window`` becomes token
    windows for a language model.

    Raises:
        CalibrationError: the path is missing or of an unsupported kind, or an option is
            unknown for that kind.
    """
    data = Path(data)
    opts = {k: v for k, v in options.items() if v is not None}
    try:
        if data.is_dir():
            return ImageFolder(data, **opts)
        if data.suffix in (".npy", ".npz"):
            return read_arrays(data, **opts)
        if any(s in _TEXT_SUFFIXES for s in data.suffixes):
            tokenizer = opts.pop("tokenizer", None)
            if tokenizer is None:
                raise CalibrationError(f"Text data {data} needs the model's tokenizer: pass "
                                       "--tokenizer DIR (or a Hugging Face model as --model).")
            if "window" in opts:
                return TokenWindows(data, Path(tokenizer), **opts)
            return TextSource(data, Path(tokenizer), **opts)
    except TypeError as e:  # an option the chosen reader does not take
        raise CalibrationError(f"Option not valid for {data}: {e}.") from e
    if not data.exists():
        raise CalibrationError(f"{data} does not exist.")
    raise CalibrationError(f"Cannot read {data}: use a folder of images, .npy/.npz arrays, or "
                           "a .csv/.jsonl/.txt text file (optionally .gz/.bz2).")


def write_descriptor(data_set: CalibrationSet | Any, data: Path, options: dict[str, Any],
                     out_dir: Path) -> Path:
    """Write ``out_dir/calibration.json`` (atomically)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / DESCRIPTOR_NAME
    write_json_atomic(path, {"schema_version": 1, "data": str(Path(data).resolve()),
                             "options": {k: str(v) if isinstance(v, Path) else v
                                         for k, v in options.items() if v is not None},
                             "split": data_set.split_rule, "salt": data_set.salt,
                             **data_set.summary()})
    return path


def read_descriptor(path: Path) -> CalibrationSet:
    """Rebuild the set a descriptor describes and check it is the same data.

    Raises:
        CalibrationError: unreadable descriptor, or the data/preprocessing changed since.
    """
    try:
        desc = json.loads(Path(path).read_text())
        rule, _, value = desc["split"].split(",")[0].partition("=")
    except (OSError, ValueError, KeyError) as e:
        raise CalibrationError(f"{path} is not a calibration descriptor: {e}.") from e
    if not desc["split"].endswith(ORDER):
        raise CalibrationError(
            f"{path} was written by an earlier frugalml, whose split ordered the parts "
            f"otherwise ({desc['split']!r}; now {ORDER}). Run frugal calibrate again (or "
            "deploy again) to write it anew.")
    try:
        size = int(value) if rule == "size" else None
        fraction = float(value) if rule == "fraction" else None
    except ValueError as e:
        raise CalibrationError(f"{path} has a malformed split rule {desc['split']!r}.") from e
    data_set = open_set(Path(desc["data"]), dict(desc["options"]), calibration_size=size,
                        calibration_fraction=fraction, salt=desc["salt"])
    if data_set.fingerprint != desc["fingerprint"]:
        raise CalibrationError(
            f"The data behind {path} changed since it was written (fingerprint "
            f"{data_set.fingerprint[:12]} != {desc['fingerprint'][:12]}). Run frugal calibrate "
            "again, and re-quantize with the new set.")
    return data_set


def open_descriptor(path: Path) -> CalibrationSet:
    """The set a descriptor, or the folder `frugal calibrate --out` wrote it into, describes.

    Raises:
        CalibrationError: no descriptor there, or its data changed since it was written.
    """
    path = Path(path)
    path = path / DESCRIPTOR_NAME if path.is_dir() else path
    if not path.is_file():
        raise CalibrationError(f"{path} is not a calibration descriptor. Make one with "
                               "`frugal calibrate DATA --model MODEL --out DIR`, then pass DIR.")
    return read_descriptor(path)
