"""The bundle manifest: what a bundle holds and needs, and what was measured at build time."""

from __future__ import annotations

import dataclasses
from typing import Any

from frugalml._records import check_schema

MANIFEST_NAME = "manifest.json"
SCHEMA_VERSION = 1


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TensorSpec:
    """Name, dtype and shape of one model input or output; a dimension may be symbolic (str)."""

    name: str
    dtype: str
    shape: tuple[int | str, ...]

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TensorSpec:
        """Inverse of :meth:`to_dict`."""
        return cls(name=data["name"], dtype=data["dtype"], shape=tuple(data["shape"]))


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TargetRequirements:
    """What the host must have to run the bundle natively."""

    name: str
    machine: str
    required_features: tuple[str, ...]
    backend: str

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {**dataclasses.asdict(self), "required_features": list(self.required_features)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TargetRequirements:
        """Inverse of :meth:`to_dict`."""
        return cls(
            name=data["name"],
            machine=data["machine"],
            required_features=tuple(data["required_features"]),
            backend=data["backend"],
        )


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Manifest:
    """Self-description of a bundle; ``files`` maps every file but the manifest to its sha256."""

    schema_version: int = SCHEMA_VERSION
    name: str
    model_file: str
    precision: str
    target: TargetRequirements
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    files: dict[str, str]
    samples_file: str
    sample_tolerance: dict[str, float]
    source: dict[str, Any]
    recipe: dict[str, Any]
    calibration: dict[str, Any] | None
    libraries: dict[str, str]
    kernels: dict[str, int]
    metrics: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form, as written to ``manifest.json``."""
        d: dict[str, Any] = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["target"] = self.target.to_dict()
        d["inputs"] = [t.to_dict() for t in self.inputs]
        d["outputs"] = [t.to_dict() for t in self.outputs]
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        """Parse ``manifest.json`` content.

        Raises:
            ValueError: the schema is newer than this frugalml.
            KeyError: a required field is missing.
        """
        check_schema(data, "Bundle manifest", SCHEMA_VERSION)
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in fields}
        values["target"] = TargetRequirements.from_dict(data["target"])
        values["inputs"] = tuple(TensorSpec.from_dict(t) for t in data["inputs"])
        values["outputs"] = tuple(TensorSpec.from_dict(t) for t in data["outputs"])
        return cls(**values)
