"""Score a candidate model against the FP32 reference on the evaluation part.

Two measures: cosine of the candidate's embeddings to FP32's, and a real downstream task,
a logistic-regression probe fitted on FP32 embeddings of a training slice and applied to both
models' embeddings of the held-out slice.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from frugalml.calibration.metrics import drop_points
from frugalml.errors import CalibrationError, require
from frugalml.runtime.numerics import row_cosine

RunFn = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class EmbeddingScore:
    """Candidate vs reference on the same held-out items."""

    items: int
    mean_cosine: float
    min_cosine: float
    probe_train_items: int
    probe_test_items: int
    reference_accuracy: float
    candidate_accuracy: float

    @property
    def accuracy_drop_points(self) -> float:
        """Reference minus candidate probe accuracy, in percentage points (positive = worse)."""
        return drop_points(self.reference_accuracy, self.candidate_accuracy)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form including the derived drop."""
        return {**dataclasses.asdict(self), "accuracy_drop_points": self.accuracy_drop_points}


def embed(
    run: RunFn, batches: Iterable[tuple[dict[str, np.ndarray], np.ndarray]], output: str
) -> tuple[np.ndarray, np.ndarray]:
    """Run every batch and stack one output and the labels."""
    outs, labels = [], []
    for feeds, batch_labels in batches:
        outs.append(run(feeds)[output])
        labels.append(batch_labels)
    if not outs:
        raise CalibrationError("The evaluation part is empty; nothing to score.")
    return np.concatenate(outs), np.concatenate(labels)


def score_embeddings(
    reference: np.ndarray, candidate: np.ndarray, labels: np.ndarray, *,
    train_fraction: float = 0.5, seed: int = 0,
) -> EmbeddingScore:
    """Cosine per item plus probe accuracy of both models on the held-out slice.

    Raises:
        CalibrationError: shapes disagree or a slice lacks one of the classes.
    """
    require("sklearn", extra="toolchain")
    from sklearn.linear_model import LogisticRegression

    if reference.shape != candidate.shape or len(reference) != len(labels):
        raise CalibrationError(
            f"Reference {reference.shape}, candidate {candidate.shape} and {len(labels)} labels "
            "must describe the same items."
        )
    n_train = int(len(labels) * train_fraction)
    train, test = slice(0, n_train), slice(n_train, None)
    if len(set(labels[train].tolist())) < 2 or len(labels[test]) == 0:
        raise CalibrationError(
            f"The probe needs both classes in its {n_train} training items and a non-empty test "
            "slice; use a larger evaluation part."
        )
    probe = LogisticRegression(max_iter=2000, random_state=seed)
    probe.fit(reference[train], labels[train])
    cosine = row_cosine(reference, candidate)
    return EmbeddingScore(
        items=len(labels), mean_cosine=float(cosine.mean()), min_cosine=float(cosine.min()),
        probe_train_items=n_train, probe_test_items=len(labels) - n_train,
        reference_accuracy=float(probe.score(reference[test], labels[test])),
        candidate_accuracy=float(probe.score(candidate[test], labels[test])),
    )
