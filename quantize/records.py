"""The record the quantize stage hands on."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from frugalml._records import check_schema, digest, to_jsonable


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class QuantizedModel:
    """A quantized ONNX model and how it was made."""

    schema_version: int = 1
    path: Path
    backend: str
    int8_format: str
    source_digest: str
    calibration_fingerprint: str
    recipe: dict[str, Any]
    int8_activation_layers: tuple[str, ...]
    weight_only_layers: tuple[str, ...]

    @property
    def digest(self) -> str:
        """Content id of how the model was made (its path excluded)."""
        d = self.to_dict()
        d.pop("path")
        return digest("quantize", d)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return to_jsonable(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QuantizedModel:
        """Inverse of :meth:`to_dict`."""
        check_schema(data, "QuantizedModel", 1)
        values = dict(data)
        values["path"] = Path(data["path"])
        values["int8_activation_layers"] = tuple(data["int8_activation_layers"])
        values["weight_only_layers"] = tuple(data["weight_only_layers"])
        return cls(**values)
