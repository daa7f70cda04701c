"""Score a candidate model against the FP32 reference on the evaluation part.

Two measures: cosine of the candidate's embeddings to FP32's, and a real downstream task,
logistic-regression probes fitted on FP32 embeddings of one half of the items and applied to
both models' embeddings of the other half, each half in turn.
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
    reference: np.ndarray, candidate: np.ndarray, labels: np.ndarray, *, seed: int = 0,
) -> EmbeddingScore:
    """Cosine per item plus probe accuracy of both models, cross-fitted over two halves.

    Two probes, each fitted on FP32 embeddings of one half and applied to both models'
    embeddings of the other: every item is scored once, by a probe that never saw it. The
    halves interleave (every other item): scoring yields texts grouped by length
    (:mod:`frugalml.calibration.batching`), so a first-half/second-half split would train on
    short texts and test on long ones. One split of 600 MiniLM items scored static INT8's
    drop anywhere from -1.7 to +2.3 points over 20 random halvings (sd 1.0); both halves
    together, every item counts.

    Raises:
        CalibrationError: shapes disagree or a half lacks one of the classes.
    """
    require("sklearn", extra="toolchain")
    from sklearn.linear_model import LogisticRegression

    if reference.shape != candidate.shape or len(reference) != len(labels):
        raise CalibrationError(
            f"Reference {reference.shape}, candidate {candidate.shape} and {len(labels)} labels "
            "must describe the same items."
        )
    odd = np.arange(len(labels)) % 2 == 1
    right = {"reference": 0, "candidate": 0}
    for train in (odd, ~odd):
        if len(set(labels[train].tolist())) < 2:
            raise CalibrationError(
                f"The probe needs both classes in each half ({int(train.sum())} items here); "
                "use a larger evaluation part.")
        probe = LogisticRegression(max_iter=2000, random_state=seed)
        probe.fit(reference[train], labels[train])
        for name, embeddings in (("reference", reference), ("candidate", candidate)):
            right[name] += int((probe.predict(embeddings[~train]) == labels[~train]).sum())
    cosine = row_cosine(reference, candidate)
    return EmbeddingScore(
        items=len(labels), mean_cosine=float(cosine.mean()), min_cosine=float(cosine.min()),
        probe_train_items=int(odd.sum()), probe_test_items=len(labels),
        reference_accuracy=right["reference"] / len(labels),
        candidate_accuracy=right["candidate"] / len(labels),
    )
