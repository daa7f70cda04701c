"""Calibration items as the backends want them: one item per feed dict, streamed and capped."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np

from frugalml.quantize._protocol import CalibrationData


def calibration_feeds(data: CalibrationData, items: int) -> Iterator[dict[str, np.ndarray]]:
    """Up to ``items`` single-item feeds from the calibration part (fewer if it holds fewer)."""
    batches = data.batches("calibration", batch_size=1)
    return (feeds for feeds, _ in itertools.islice(batches, items))


