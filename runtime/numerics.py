"""Numeric agreement measures shared by export checks, evaluation and bundle self-checks."""

from __future__ import annotations

import numpy as np


def row_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity per leading-axis item (the rest flattened), computed in float64.

    Two all-zero items count as identical (cosine 1).
    """
    a2 = a.reshape(len(a), -1).astype(np.float64)
    b2 = b.reshape(len(b), -1).astype(np.float64)
    denom = np.linalg.norm(a2, axis=1) * np.linalg.norm(b2, axis=1)
    cosine = (a2 * b2).sum(1) / np.maximum(denom, 1e-12)
    # Two all-zero rows agree exactly (ReLU outputs, padding); one zero row does not.
    both_zero = ~a2.any(axis=1) & ~b2.any(axis=1)
    return np.where(both_zero, 1.0, cosine)


def max_abs_error(a: np.ndarray, b: np.ndarray) -> float:
    """Largest absolute elementwise difference, in float64."""
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max(initial=0.0))
