"""The record the quantize stage hands on."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from frugalml.core.records import check_schema, digest, to_jsonable

_LAYER_FIELDS = ("int8_activation_layers", "weight_only_layers", "int4_weight_layers",
                 "float_layers")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class QuantizedModel:
    """A quantized model file (ONNX or OpenVINO IR), how it was made and how it scored.

    ``accuracy`` is filled by :func:`frugalml.quantize.quantize` after scoring the model
    against FP32 on the evaluation part (None straight from a backend).
    """

    schema_version: int = 3   # 3: decoder and gguf_sha256, copied from the source's record
    path: Path
    backend: str
    precision: str
    format: str
    int8_format: str
    source_digest: str
    calibration_fingerprint: str
    recipe: dict[str, Any]
    int8_activation_layers: tuple[str, ...] = ()
    weight_only_layers: tuple[str, ...] = ()
    int4_weight_layers: tuple[str, ...] = ()
    float_layers: tuple[str, ...] = ()
    # How activations run: "float", "static int8" (calibrated Q/DQ or FakeQuantize), or
    # "dynamic int8 ..." (quantized per block at run time inside the 4-bit MatMul kernels).
    activations: str = "float"
    size_bytes: int = 0
    # Calibration items the backend read (the recipe's calibration_items is what it asked for).
    calibration_items_used: int = 0
    seconds: float = 0.0
    # The nodes range safety kept in float and why (frugalml.quantize.range_safety).
    range_safety: dict[str, Any] | None = None
    accuracy: dict[str, Any] | None = None
    # A streaming model's input roles (runtime.roles.InputRoles), for its bundles' manifests.
    input_roles: dict[str, Any] | None = None
    # The source's stage-record facts, carried on (export.model_info.Recorded): a KV-cache
    # decoder's layout, and the GGUF file the model came from by sha256.
    decoder: dict[str, Any] | None = None
    gguf_sha256: str | None = None

    @property
    def digest(self) -> str:
        """Content id of how the model was made (its path, time and score excluded)."""
        d = self.to_dict()
        for key in ("path", "seconds", "accuracy"):
            d.pop(key)
        return digest("quantize", d)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return to_jsonable(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QuantizedModel:
        """Inverse of :meth:`to_dict`."""
        check_schema(data, "QuantizedModel", 3)
        values = {k: v for k, v in data.items() if k != "schema_version"}
        values["path"] = Path(data["path"])
        for key in _LAYER_FIELDS:
            values[key] = tuple(data.get(key, ()))
        return cls(**values)
