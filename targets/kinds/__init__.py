"""Target kinds: one module per artifact a target runs (ONNX for CPUs, the ONNX Runtime Mobile
format for phones, OpenVINO IR for OpenVINO CPUs and Intel GPUs), chosen by name from one
registry. A new kind is a module and a registry line, or :func:`register` from outside."""

from __future__ import annotations

from typing import Any

from frugalml.core.registry import Registry
from frugalml.errors import TargetError

KINDS = Registry("Target kind (artifact)", {
    "onnx": "frugalml.targets.kinds.onnx:OnnxKind",
    "ort": "frugalml.targets.kinds.ort_mobile:OrtMobileKind",
    "openvino-ir": "frugalml.targets.kinds.openvino_ir:OpenVinoIrKind",
}, TargetError)

# NOTE: the TargetKind protocol (kinds._protocol) is not imported here: target profiles read
# names() to validate a target file, and the protocol's signatures name the Target record.
__all__ = ["KINDS", "get_kind", "names", "register"]


def names() -> tuple[str, ...]:
    """Known kinds (the values ``Target.artifact`` may take)."""
    return KINDS.names()


def register(name: str, where: str) -> None:
    """Add a kind implemented outside this package (``"module:Class"``); a plug-in's one
    line. Registering a built-in name again is refused.

    Raises:
        TargetError: the name is taken.
    """
    KINDS.register(name, where)


def get_kind(name: str) -> Any:
    """The kind called ``name`` (a :class:`~frugalml.targets.kinds._protocol.TargetKind`).

    Raises:
        TargetError: the name is unknown (the message lists the known kinds).
    """
    return KINDS.load(name)()
