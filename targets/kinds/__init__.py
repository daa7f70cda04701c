"""Target kinds: one module per artifact a target runs (ONNX for CPUs, the ONNX Runtime Mobile
format for phones, OpenVINO IR for OpenVINO CPUs and Intel GPUs), chosen by name from one
registry. A new kind is a module and a registry line, or :func:`register` from outside."""

from __future__ import annotations

import importlib
from typing import Any

from frugalml.errors import TargetError

_KINDS: dict[str, str] = {
    "onnx": "frugalml.targets.kinds.onnx:OnnxKind",
    "ort": "frugalml.targets.kinds.ort_mobile:OrtMobileKind",
    "openvino-ir": "frugalml.targets.kinds.openvino_ir:OpenVinoIrKind",
}

# NOTE: the TargetKind protocol (kinds._protocol) is not imported here: target profiles read
# names() to validate a target file, and the protocol's signatures name the Target record.
__all__ = ["get_kind", "names", "register"]


def names() -> tuple[str, ...]:
    """Known kinds (the values ``Target.artifact`` may take)."""
    return tuple(_KINDS)


def register(name: str, where: str) -> None:
    """Add a kind implemented outside this package (``"module:Class"``); a plug-in's one
    line. Registering a built-in name again is refused.

    Raises:
        TargetError: the name is taken.
    """
    if name in _KINDS and _KINDS[name] != where:
        raise TargetError(f"Target kind {name!r} is already {_KINDS[name]}.")
    _KINDS[name] = where


def get_kind(name: str) -> Any:
    """The kind called ``name`` (a :class:`~frugalml.targets.kinds._protocol.TargetKind`).

    Raises:
        TargetError: the name is unknown (the message lists the known kinds).
    """
    if name not in _KINDS:
        raise TargetError(f"Unknown target kind (artifact) {name!r}; known: "
                          f"{', '.join(_KINDS)}.")
    module, cls = _KINDS[name].split(":")
    return getattr(importlib.import_module(module), cls)()
