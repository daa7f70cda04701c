"""Deterministic hashed split: calibration and evaluation never share a sample."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence

from frugalml.errors import CalibrationError


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Split:
    """Indices of each part into the item list, and how many duplicate items were dropped."""

    calibration: tuple[int, ...]
    evaluation: tuple[int, ...]
    duplicates_dropped: int


def hashed_split(keys: Sequence[str], *, calibration_size: int, salt: str = "frugalml") -> Split:
    """Order items by sha256(salt + key) and take the first ``calibration_size`` for calibration.

    Identical keys are kept once, so the same text can never land in both parts. The order
    depends only on content, so adding items elsewhere in the file does not reshuffle the split.

    Raises:
        CalibrationError: too few distinct items for a non-empty evaluation part.
    """
    first_seen: dict[str, int] = {}
    for index, key in enumerate(keys):
        first_seen.setdefault(key, index)
    if calibration_size < 1:
        raise CalibrationError(f"calibration_size must be at least 1, got {calibration_size}.")
    if len(first_seen) <= calibration_size:
        raise CalibrationError(
            f"The set has {len(first_seen)} distinct items; {calibration_size} are requested for "
            "calibration, which leaves none for evaluation. Use a smaller calibration_size or "
            "more data."
        )

    def rank(key: str) -> str:
        return hashlib.sha256((salt + "\0" + key).encode()).hexdigest()

    ordered = sorted(first_seen, key=rank)
    calibration = tuple(sorted(first_seen[k] for k in ordered[:calibration_size]))
    evaluation = tuple(sorted(first_seen[k] for k in ordered[calibration_size:]))
    return Split(calibration=calibration, evaluation=evaluation,
                 duplicates_dropped=len(keys) - len(first_seen))
