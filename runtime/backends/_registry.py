"""The one table of inference backends: name -> "module:Class", imported on lookup."""

from __future__ import annotations

import importlib

from frugalml.errors import TargetError, require
from frugalml.runtime.backends._protocol import Backend

_BACKENDS: dict[str, str] = {
    "onnxruntime": "frugalml.runtime.backends.onnxruntime:OnnxRuntimeBackend",
    "openvino": "frugalml.runtime.backends.openvino:OpenVinoBackend",
}


def names() -> tuple[str, ...]:
    """Known backend names."""
    return tuple(_BACKENDS)


def get_backend(name: str) -> Backend:
    """Instantiate the backend called ``name``.

    Raises:
        TargetError: the name is unknown.
        FrugalError: the backend's library is not installed.
    """
    if name not in _BACKENDS:
        raise TargetError(f"Unknown backend {name!r}; known backends: {', '.join(_BACKENDS)}.")
    module_name, cls_name = _BACKENDS[name].split(":")
    backend: Backend = getattr(importlib.import_module(module_name), cls_name)()
    require(backend.module, extra="runtime" if backend.module == "onnxruntime" else name)
    return backend
