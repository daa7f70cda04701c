"""The contract every quantization backend meets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from frugalml.quantize.recipe import Recipe
from frugalml.quantize.records import QuantizedModel
from frugalml.targets.profiles import Target


class CalibrationData(Protocol):
    """What a quantizer reads: a fingerprint and batches of model inputs with labels."""

    @property
    def fingerprint(self) -> str: ...

    def batches(
        self, part: str, *, batch_size: int, limit: int | None = None, by_length: bool = False
    ) -> Iterator[tuple[dict[str, np.ndarray], np.ndarray]]:
        """``batch_size`` items of ``part`` at a time, at most ``limit``; ``by_length``: items
        of similar length together (fewer padded positions; scoring asks for it)."""
        ...


@runtime_checkable
class Quantizer(Protocol):
    """Turns an FP32 model file into a quantized one for a target, following a recipe."""

    name: str

    def quantize(
        self, model: Path, data: CalibrationData, recipe: Recipe, target: Target, out: Path,
        *, source_digest: str, structure: str,
    ) -> QuantizedModel:
        """Write the quantized model to ``out`` and describe it. ``structure`` is the model's
        (:func:`frugalml.export.model_info.structure_of`, decided once for every backend):
        which quantization mode suits it."""
        ...
