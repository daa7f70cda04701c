"""Inference backends behind one small protocol, chosen by name from one registry."""

from __future__ import annotations

from pathlib import Path

from frugalml.runtime.backends._protocol import Backend, Session
from frugalml.runtime.backends._registry import get_backend, names
from frugalml.runtime.formats import is_ir

__all__ = ["Backend", "Session", "backend_for", "get_backend", "names"]


def backend_for(model_file: Path) -> str:
    """The backend that runs a model file: OpenVINO for an IR (.xml), else ONNX Runtime."""
    return "openvino" if is_ir(model_file) else "onnxruntime"
