"""The export stage's record: where the ONNX file is and how well it matches its source."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from frugalml._records import check_schema, digest, to_jsonable


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class OutputCheck:
    """Agreement of one exported output with the source model on real inputs."""

    name: str
    max_abs_error: float
    mean_cosine: float
    min_cosine: float
    passed: bool


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ExportedModel:
    """An exported ONNX model plus the evidence that it matches the source model."""

    schema_version: int = 1
    path: Path
    source: str
    source_digest: str
    exporter: str
    opset: int
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    checks: tuple[OutputCheck, ...]
    inputs_used: int

    @property
    def digest(self) -> str:
        """Content id: the source, how it was exported, and the check results."""
        d = self.to_dict()
        d.pop("path")
        return digest("export", d)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return to_jsonable(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExportedModel:
        """Inverse of :meth:`to_dict`."""
        check_schema(data, "ExportedModel", 1)
        return cls(
            schema_version=data["schema_version"],
            path=Path(data["path"]),
            source=data["source"],
            source_digest=data["source_digest"],
            exporter=data["exporter"],
            opset=int(data["opset"]),
            input_names=tuple(data["input_names"]),
            output_names=tuple(data["output_names"]),
            checks=tuple(OutputCheck(**c) for c in data["checks"]),
            inputs_used=int(data["inputs_used"]),
        )
