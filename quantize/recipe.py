"""Recipes say what to do to weights and activations; they know no backend."""

from __future__ import annotations

import dataclasses
from enum import StrEnum
from typing import Any

from frugalml._records import check_schema, digest, to_jsonable
from frugalml.errors import QuantizationError


class Precision(StrEnum):
    """What the deployed model computes in."""

    FP32 = "fp32"
    INT8 = "int8"


class CalibrationMethod(StrEnum):
    """How activation ranges are read from the calibration part."""

    MINMAX = "minmax"
    PERCENTILE = "percentile"
    ENTROPY = "entropy"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Budget:
    """What a quantized model must reach against FP32 to ship."""

    min_mean_cosine: float = 0.99
    max_accuracy_drop_points: float = 1.0
    max_size_ratio: float = 0.30
    must_be_faster: bool = True

    def __post_init__(self) -> None:
        """Refuse budgets no model can meet, instead of reporting a failure after the work.

        Raises:
            QuantizationError: naming the impossible limit.
        """
        problems = []
        if not -1.0 <= self.min_mean_cosine <= 1.0:
            problems.append(f"min_mean_cosine {self.min_mean_cosine} (a cosine is at most 1)")
        if not self.max_accuracy_drop_points >= 0.0:
            problems.append(f"max_accuracy_drop_points {self.max_accuracy_drop_points} "
                            "(a drop below 0 asks the quantized model to beat FP32)")
        if not self.max_size_ratio > 0.0:
            problems.append(f"max_size_ratio {self.max_size_ratio} (sizes are positive)")
        if problems:
            raise QuantizationError(f"This accuracy budget cannot be met: {'; '.join(problems)}."
                                    " Loosen it (e.g. --min-cosine 0.99 --max-drop 1.0).")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Recipe:
    """Static INT8 (per-channel weights) or FP32, plus the accuracy budget it must meet.

    ``float_activations_after`` names op types whose outputs are fed to the next linear layer in
    float: that layer keeps its int8 weights but not int8 activations. NOTE: the default, GELU,
    comes from a measurement on all-MiniLM-L6-v2: the FFN down-projections read GELU outputs with
    heavy outliers, and quantizing them per tensor dropped the mean embedding cosine from 0.991
    to 0.987 (MinMax, 100 calibration texts).
    """

    schema_version: int = 1
    precision: Precision = Precision.INT8
    calibration_method: CalibrationMethod = CalibrationMethod.MINMAX
    calibration_items: int = 300
    per_channel: bool = True
    float_activations_after: tuple[str, ...] = ("Gelu",)
    quantize_embeddings: bool = True
    budget: Budget = dataclasses.field(default_factory=Budget)

    def __post_init__(self) -> None:
        """Raises QuantizationError for a calibration set size below one item."""
        if self.calibration_items < 1:
            raise QuantizationError(f"calibration_items is {self.calibration_items}; a static "
                                    "recipe needs at least 1 calibration item (300 is typical).")

    @property
    def digest(self) -> str:
        """Content id used in cache keys."""
        return digest("recipe", self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return to_jsonable(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Recipe:
        """Inverse of :meth:`to_dict`."""
        check_schema(data, "Recipe", 1)
        return cls(
            precision=Precision(data["precision"]),
            calibration_method=CalibrationMethod(data["calibration_method"]),
            calibration_items=int(data["calibration_items"]),
            per_channel=bool(data["per_channel"]),
            float_activations_after=tuple(data["float_activations_after"]),
            quantize_embeddings=bool(data["quantize_embeddings"]),
            budget=Budget(**data["budget"]),
        )


RECIPES = {"int8": Recipe}


def get_recipe(name: str, **options: Any) -> Recipe:
    """The named recipe with ``options`` (Recipe fields) applied.

    Raises:
        QuantizationError: the name is unknown; the message lists the known recipes.
    """
    if name not in RECIPES:
        raise QuantizationError(f"Unknown recipe {name!r}; known recipes: {', '.join(RECIPES)}.")
    return RECIPES[name](**options)
