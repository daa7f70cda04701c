"""The contract every inference backend meets (numpy in, numpy out)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np


@dataclasses.dataclass(frozen=True, slots=True)
class OpEvent:
    """Time one graph node spent executing, summed over ``calls`` inferences."""

    node: str
    op_type: str
    exec_type: str
    total_us: float
    calls: int


@runtime_checkable
class Session(Protocol):
    """A loaded model ready to run; ``run`` may be called from many threads at once."""

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run once and return every output by name (arrays the caller owns)."""
        ...

    def op_events(self) -> list[OpEvent]:
        """Per-node times since the session was opened with ``profile=True``."""
        ...

    def close(self) -> None:
        """Release the backend's resources; the session must not be used afterwards."""
        ...

    @property
    def inference_precision(self) -> str | None:
        """The float precision the backend computes in, read back from it (``fp32``,
        ``bf16``, ``fp16``), or None where each op runs in its graph's own types."""
        ...


@runtime_checkable
class Backend(Protocol):
    """Opens model files of one runtime library (imported lazily inside the backend module)."""

    name: str
    module: str

    def open(self, model_file: Path, *, threads: int, streams: int = 1,
             profile: bool = False, device: str = "CPU",
             hints: Mapping[str, str] | None = None) -> Session:
        """Load and compile ``model_file``.

        ``threads``: intra-op threads (0 lets the library choose); ``streams``: how many
        inferences may run in parallel; ``profile``: record per-node times (slower runs);
        ``device``: where to run (a backend without that device raises ``TargetError``);
        ``hints``: backend properties the bundle's target asks for.
        """
        ...
