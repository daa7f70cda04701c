"""The contract every inference backend meets (numpy in, numpy out)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Session(Protocol):
    """A loaded model ready to run."""

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run once and return every output by name."""
        ...


@runtime_checkable
class Backend(Protocol):
    """Opens model files of one runtime library (imported lazily inside the backend module)."""

    name: str
    module: str

    def open(self, model_file: Path, *, threads: int) -> Session:
        """Load ``model_file`` with ``threads`` intra-op threads (0 lets the library choose)."""
        ...
