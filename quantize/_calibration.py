"""Calibration items as the backends want them: one item per feed dict, streamed and capped,
and counted as a backend reads them."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import numpy as np

from frugalml.quantize._protocol import CalibrationData


def calibration_feeds(data: CalibrationData, items: int) -> Iterator[dict[str, np.ndarray]]:
    """Up to ``items`` single-item feeds from the calibration part (fewer if it holds fewer)."""
    batches = data.batches("calibration", batch_size=1)
    return (feeds for feeds, _ in itertools.islice(batches, items))


class CountedData:
    """The calibration data as a backend reads it, counting the calibration items it takes
    (the record says how many were used, not how many the recipe asked for)."""

    def __init__(self, data: CalibrationData) -> None:
        self._data = data
        self.used = 0

    @property
    def fingerprint(self) -> str:
        return self._data.fingerprint

    def batches(self, part: str, *, batch_size: int, limit: int | None = None
                ) -> Iterator[tuple[dict[str, np.ndarray], np.ndarray]]:
        seen = 0
        for feeds, labels in self._data.batches(part, batch_size=batch_size, limit=limit):
            if part == "calibration":
                seen += len(labels)
                self.used = max(self.used, seen)  # NNCF reads the part once per pass
            yield feeds, labels

    def __getattr__(self, name: str) -> Any:
        return getattr(self._data, name)
