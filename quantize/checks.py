"""The records of scoring a quantized model against FP32: the task, each budget check, and
the report that says whether the model is within budget."""

from __future__ import annotations

import dataclasses
from enum import StrEnum
from typing import Any


class Task(StrEnum):
    """What the model's outputs mean, which decides the metric."""

    CLASSIFICATION = "classification"
    EMBEDDING = "embedding"
    LANGUAGE_MODEL = "language-model"
    OBJECT_DETECTION = "object-detection"
    OUTPUTS = "outputs"
    # A model that carries state from chunk to chunk, scored over whole streams.
    STREAMING = "streaming"



@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Check:
    """One budget limit, the measured value, whether it meets it and, when it fails, why."""

    name: str
    value: float
    limit: float
    passed: bool
    why: str = ""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class AccuracyReport:
    """FP32 and candidate on the same evaluation items, and the budget checks."""

    task: str
    output: str
    items: int
    reference: dict[str, float]
    candidate: dict[str, float]
    checks: tuple[Check, ...]
    parts: tuple[dict[str, Any], ...] = ()
    # Evaluation items scored when the time budget stopped scoring early; None: all were.
    stopped_after_items: int | None = None

    @property
    def within_budget(self) -> bool:
        """Every check passed."""
        return all(c.passed for c in self.checks)

    def failures(self) -> list[str]:
        """One line per failed check."""
        return [f"{c.name} {c.value:.4f} (limit {c.limit})" + (f": {c.why}" if c.why else "")
                for c in self.checks if not c.passed]

    def with_check(self, check: Check) -> AccuracyReport:
        """This report with one more check (the size check is added by the caller)."""
        return dataclasses.replace(self, checks=(*self.checks, check))

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form, including the verdict."""
        return {**dataclasses.asdict(self), "within_budget": self.within_budget}
