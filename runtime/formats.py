"""What a model file is, from its name: the one place frugalml reads a model's format from a
file suffix (an ONNX graph, an OpenVINO IR pair, a llama.cpp GGUF, an ONNX Runtime Mobile
file). Every stage asks here, so a new format is taught once."""

from __future__ import annotations

from pathlib import Path

ONNX, OPENVINO, GGUF, ORT = "onnx", "openvino", "gguf", "ort"
_SUFFIXES = {".onnx": ONNX, ".xml": OPENVINO, ".bin": OPENVINO, ".gguf": GGUF, ".ort": ORT}


def model_format(path: str | Path) -> str | None:
    """``onnx``, ``openvino`` (an IR's .xml or its .bin), ``gguf``, ``ort``, or None for
    anything else (a model directory, a data file)."""
    return _SUFFIXES.get(Path(path).suffix)


def is_onnx(path: str | Path) -> bool:
    """An ONNX graph file (by name; whether it exists is the caller's check)."""
    return model_format(path) == ONNX


def is_ir(path: str | Path) -> bool:
    """An OpenVINO IR's .xml (its weights are :func:`ir_weights`)."""
    return Path(path).suffix == ".xml"


def is_gguf(path: str | Path) -> bool:
    """A llama.cpp GGUF checkpoint."""
    return model_format(path) == GGUF


def ir_weights(xml: str | Path) -> Path:
    """The .bin an IR's .xml reads its weights from."""
    return Path(xml).with_suffix(".bin")


def ir_pair(path: str | Path) -> Path:
    """The .xml of an IR given by either of its files."""
    return Path(path).with_suffix(".xml")


def model_files(path: str | Path) -> list[Path]:
    """The files a model file stands for: an IR's .xml and .bin; an ONNX file and the
    external-data files beside it (``model.onnx.data``, ``model.onnx_data``); else the file."""
    path = Path(path)
    if is_ir(path):
        return [path, ir_weights(path)]
    if not is_onnx(path) or not path.parent.is_dir():
        return [path]
    return [path, *sorted(p for p in path.parent.iterdir() if p.is_file() and (
        p.name.startswith(path.name + ".") or p.name.startswith(path.stem + ".onnx_data")))]
