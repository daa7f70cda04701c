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


# How the parts are ordered; part of every split rule, so sets ordered otherwise (by an
# earlier frugalml) have other fingerprints and never share cached scores.
ORDER = "calibration in hash order, evaluation in reverse hash order"


def _rank(salt: str, key: str) -> str:
    return hashlib.sha256((salt + "\0" + key).encode()).hexdigest()


def hashed_split(keys: Sequence[str], *, calibration_size: int | None = None,
                 calibration_fraction: float | None = None, salt: str = "frugalml") -> Split:
    """Split items by the sha256 of their identity key; identical keys are kept once.

    ``calibration_fraction``: an item is calibration iff its hash falls below the fraction, so
    adding or removing other items never moves an existing item to the other part.
    ``calibration_size``: the ``N`` lowest hashes are calibration (exact count; an added item
    can push one calibration item over the boundary into evaluation, never the reverse).
    Calibration comes in hash order, evaluation in reverse hash order (:data:`ORDER`).

    Raises:
        CalibrationError: neither or both options given, or a part would be empty.
    """
    if (calibration_size is None) == (calibration_fraction is None):
        raise CalibrationError("Give exactly one of calibration_size or calibration_fraction.")
    first_seen: dict[str, int] = {}
    for index, key in enumerate(keys):
        first_seen.setdefault(key, index)
    if calibration_size is not None:
        if calibration_size < 1:
            raise CalibrationError(f"calibration_size must be at least 1, got {calibration_size}.")
        chosen = set(sorted(first_seen, key=lambda k: _rank(salt, k))[:calibration_size])
    else:
        if not 0.0 < calibration_fraction < 1.0:  # type: ignore[operator]
            raise CalibrationError(
                f"calibration_fraction must be between 0 and 1, got {calibration_fraction}.")
        limit = int(calibration_fraction * 2**64)  # type: ignore[operator]
        chosen = {k for k in first_seen if int(_rank(salt, k)[:16], 16) < limit}
    # Each part in hash order, not file order: a limit (``eval_items``) then takes a sample
    # spread over the whole set, never the first classes of a folder sorted by class. The
    # evaluation part runs from the highest hash down, away from the calibration boundary: its
    # first items are the same whatever the calibration size, so runs with another --num score
    # the same items and check their export on the same inputs (whose cache entry they share).
    ranked = sorted(first_seen, key=lambda k: _rank(salt, k))
    calibration = tuple(first_seen[k] for k in ranked if k in chosen)
    evaluation = tuple(first_seen[k] for k in reversed(ranked) if k not in chosen)
    if not calibration or not evaluation:
        raise CalibrationError(
            f"The set has {len(first_seen)} distinct items; the split leaves "
            f"{len(calibration)} for calibration and {len(evaluation)} for evaluation. Both "
            "need at least one: change the calibration size or fraction, or add data.")
    return Split(calibration=calibration, evaluation=evaluation,
                 duplicates_dropped=len(keys) - len(first_seen))
