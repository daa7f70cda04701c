"""Read, check and write ONNX files safely: truncation, foreign files and escaping external data.

External-data locations are resolved against the model's directory and must stay inside it:
a model file is untrusted input, and ``location: ../../etc/passwd`` must not be read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from frugalml.errors import ExportError, one_line, require

# Protobuf cannot serialise a message over 2 GiB; leave headroom for the graph itself.
EXTERNAL_DATA_THRESHOLD = 1_800_000_000


def load_checked(path: Path, *, with_data: bool = True) -> Any:
    """Load ``path`` as ONNX after checking it is whole, valid and self-contained.

    Raises:
        ExportError: the file is missing, truncated or not ONNX, fails the ONNX checker, or
            names external data outside its directory or that is missing or short.
    """
    require("onnx", extra="toolchain")
    import onnx
    from google.protobuf.message import DecodeError

    path = Path(path)
    if not path.is_file():
        raise ExportError(f"{path} does not exist. Pass the path of an .onnx file.")
    if path.stat().st_size == 0:
        raise ExportError(f"{path} is empty (0 bytes): the export or copy that wrote it did not "
                          "finish. Export it again or copy it whole.")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, RuntimeError, ValueError, OSError) as e:
        raise ExportError(
            f"{path} is not a readable ONNX model ({type(e).__name__}: {str(e)[:200]}). "
            f"{_sniff(path)}It may be truncated (an interrupted download or copy) or another "
            "kind of file: export it again or copy it whole."
        ) from e
    if not model.graph.node and not model.graph.output:
        raise ExportError(f"{path} parsed as ONNX but holds no graph: it is not an ONNX model "
                          "(or is truncated). Export it again.")
    for location, needed in external_data_extents(model).items():
        _check_external_file(path.parent, location, needed)
    try:
        onnx.checker.check_model(str(path))
    except onnx.checker.ValidationError as e:
        raise ExportError(f"{path} fails the ONNX checker: {one_line(e)}. "
                          "Export the model again; if you edited the graph, fix the node "
                          "named above.") from e
    if with_data:
        onnx.load_external_data_for_model(model, str(path.parent))
    return model


def external_data_extents(model: Any) -> dict[str, int]:
    """Bytes each external-data file must hold (largest ``offset + length`` it is read at)."""
    from onnx.external_data_helper import ExternalDataInfo, uses_external_data

    extents: dict[str, int] = {}
    for tensor in _all_tensors(model):
        if uses_external_data(tensor):
            info = ExternalDataInfo(tensor)
            end = (info.offset or 0) + (info.length or 0)
            extents[info.location] = max(extents.get(info.location, 0), end)
    return extents


def _all_tensors(model: Any) -> list[Any]:
    """Initializers and tensor attributes of the graph and every subgraph (If, Loop, Scan)."""
    tensors: list[Any] = []
    graphs = [model.graph]
    while graphs:
        graph = graphs.pop()
        tensors.extend(graph.initializer)
        for node in graph.node:
            for attr in node.attribute:
                if attr.HasField("t"):
                    tensors.append(attr.t)
                tensors.extend(attr.tensors)
                if attr.HasField("g"):
                    graphs.append(attr.g)
                graphs.extend(attr.graphs)
    return tensors


_MAGIC = ((b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"),
          (b"PK\x03\x04", "a ZIP archive (a PyTorch checkpoint or an .npz?)"),
          (b"\x1f\x8b", "gzip data"), (b"<?xml", "XML (an OpenVINO IR .xml?)"),
          (b"<net", "an OpenVINO IR .xml"), (b"\x80", "a Python pickle"))


def _sniff(path: Path) -> str:
    """'It starts like X. ' for file kinds users mistake for ONNX, else ''."""
    with open(path, "rb") as f:
        head = f.read(8)
    kind = next((name for magic, name in _MAGIC if head.startswith(magic)), None)
    return f"It starts like {kind}, not ONNX. " if kind else ""


def _check_external_file(model_dir: Path, location: str, needed: int) -> None:
    root = model_dir.resolve()
    target = (root / location).resolve()
    if (root / location).is_symlink() and not target.is_relative_to(root):
        raise ExportError(
            f"The model's external data file '{location}' is a symlink to {target}, outside "
            f"its directory {root}. frugalml only reads external data stored beside the model: "
            "replace the link with the file itself."
        )
    if Path(location).is_absolute() or not target.is_relative_to(root):
        raise ExportError(
            f"The model names external data at '{location}', outside its directory {root}. "
            "frugalml only reads external data stored beside the model: move the data file "
            "into the model's directory and re-save the model with a relative location."
        )
    if not target.is_file():
        raise ExportError(f"External data file '{location}' named by the model is missing from "
                          f"{root}. Copy it beside the model.")
    if target.stat().st_size < needed:
        raise ExportError(
            f"External data file '{location}' holds {target.stat().st_size} bytes but the model "
            f"reads up to byte {needed}: it is truncated. Copy it again.")


def save_onnx(model: Any, path: Path) -> Path:
    """Write ``model`` to ``path``; over ~2 GB the weights go to ``<name>.data`` beside it."""
    import onnx

    path.parent.mkdir(parents=True, exist_ok=True)
    if model.ByteSize() > EXTERNAL_DATA_THRESHOLD:
        onnx.save_model(model, str(path), save_as_external_data=True,
                        all_tensors_to_one_file=True, location=f"{path.name}.data",
                        size_threshold=1024)
    else:
        onnx.save_model(model, str(path))
    return path


def opset_of(model: Any) -> int:
    """The default-domain opset the model was written for."""
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
