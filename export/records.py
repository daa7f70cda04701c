"""The export stage's record: which file was written, how, and how well it matches its source."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from frugalml.core.records import check_schema, digest, to_jsonable

SCHEMA_VERSION = 3   # 3: a decoder's cache layout and a GGUF origin live in the record
RECORD_NAME = "export.json"   # beside the exported model


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class OutputCheck:
    """Agreement of one exported output with the source model on real inputs (worst batch)."""

    name: str
    max_abs_error: float
    max_rel_error: float
    mean_cosine: float
    min_cosine: float
    passed: bool


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ExportedModel:
    """An exported model (ONNX, or OpenVINO IR) plus the evidence that it matches the source.

    ``attempts`` lists exporters that failed before ``exporter`` succeeded, as
    ``"name: reason"`` lines, so a fallback is never silent. ``decoder`` is a KV-cache
    decoder's cache layout (:class:`~frugalml.runtime.generate.DecoderLayout` as a dict) and
    ``gguf_sha256`` the GGUF file the model came from, by content (never a machine path): the
    facts later stages need to drive and to requantize the model travel in this record.
    """

    schema_version: int = SCHEMA_VERSION
    path: Path
    format: str = "onnx"
    source: str
    source_digest: str
    exporter: str
    opset: int
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    checks: tuple[OutputCheck, ...]
    inputs_used: int
    attempts: tuple[str, ...] = ()
    simplified: bool = False
    fp16_weights: bool = False
    fusions: tuple[str, ...] = ()       # "attention x6", ... when the graph was fused
    size_bytes: int = 0
    seconds: float = 0.0
    decoder: dict[str, Any] | None = None
    gguf_sha256: str | None = None

    @property
    def digest(self) -> str:
        """Content id: the source, how it was exported, and the check results (not timings)."""
        d = self.to_dict()
        for volatile in ("path", "seconds"):
            d.pop(volatile)
        return digest("export", d)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return to_jsonable(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExportedModel:
        """Inverse of :meth:`to_dict`."""
        check_schema(data, "ExportedModel", SCHEMA_VERSION)
        fields = dict(data)
        fields["path"] = Path(data["path"])
        for name in ("input_names", "output_names", "attempts"):
            fields[name] = tuple(data[name])
        fields["fusions"] = tuple(data.get("fusions", ()))
        fields["checks"] = tuple(OutputCheck(**c) for c in data["checks"])
        return cls(**fields)


def items_in(feeds: Sequence[Mapping[str, np.ndarray]]) -> int:
    """Number of input items over all batches (leading axis of each batch's first input)."""
    first = [np.asarray(next(iter(f.values()))) for f in feeds]
    return sum(a.shape[0] if a.ndim else 1 for a in first)
