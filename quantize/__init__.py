"""Quantize stage: recipes, backends chosen by name, and the QuantizedModel record."""

from __future__ import annotations

from frugalml.quantize._protocol import CalibrationData, Quantizer
from frugalml.quantize._registry import get_quantizer, names
from frugalml.quantize.recipe import Budget, CalibrationMethod, Precision, Recipe
from frugalml.quantize.records import QuantizedModel

__all__ = [
    "Budget",
    "CalibrationData",
    "CalibrationMethod",
    "Precision",
    "QuantizedModel",
    "Quantizer",
    "Recipe",
    "get_quantizer",
    "names",
]
