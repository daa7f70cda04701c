"""Evaluators: each returns the value, how many items it rests on, and its standard error."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from frugalml.errors import CalibrationError
from frugalml.runtime.numerics import row_cosine


@dataclasses.dataclass(frozen=True, slots=True)
class Metric:
    """One measured number; ``stderr`` is the binomial standard error for accuracies."""

    name: str
    value: float
    count: int
    stderr: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return dataclasses.asdict(self)


def _rate(name: str, hits: np.ndarray) -> Metric:
    n = int(hits.size)
    if n == 0:
        raise CalibrationError(f"{name} needs at least one labelled item; none were scored.")
    p = float(hits.mean())
    return Metric(name, p, n, math.sqrt(p * (1 - p) / n))


def top_k_accuracy(logits: np.ndarray, labels: np.ndarray, k: int = 1) -> Metric:
    """Share of items whose label is among the ``k`` highest logits (unlabelled, -1, skipped)."""
    known = labels >= 0
    top = np.argsort(-logits[known], axis=1)[:, :k]
    return _rate(f"top{k}_accuracy", (top == labels[known][:, None]).any(axis=1))


def top1_agreement(reference: np.ndarray, candidate: np.ndarray) -> Metric:
    """Share of items where the candidate's top-1 class equals the reference model's."""
    return _rate("top1_agreement_with_fp32", reference.argmax(1) == candidate.argmax(1))


def output_cosine(reference: np.ndarray, candidate: np.ndarray) -> Metric:
    """Mean per-item cosine of the candidate's outputs to the reference's."""
    cos = row_cosine(reference, candidate)
    return Metric("mean_cosine_to_fp32", float(cos.mean()), int(cos.size))


def sequence_nll(logits: np.ndarray, input_ids: np.ndarray, attention_mask: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Per sequence: the summed next-token negative log-likelihood over the unmasked
    positions, and how many positions that is (what a perplexity interval resamples)."""
    shifted = logits[:, :-1].astype(np.float64)
    targets, mask = input_ids[:, 1:], attention_mask[:, 1:].astype(bool)
    shifted -= shifted.max(axis=-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    nll = -np.take_along_axis(log_probs, targets[..., None], axis=-1)[..., 0]
    return np.where(mask, nll, 0.0).sum(axis=1), mask.sum(axis=1)


def perplexity(logits: np.ndarray, input_ids: np.ndarray, attention_mask: np.ndarray) -> Metric:
    """exp(mean next-token negative log-likelihood) over the unmasked positions."""
    nll, count = sequence_nll(logits, input_ids, attention_mask)
    if not count.sum():
        raise CalibrationError("Perplexity needs at least two tokens in some sequence.")
    return Metric("perplexity", float(np.exp(nll.sum() / count.sum())), int(count.sum()))


def paired_ratio_interval(numerator: np.ndarray, denominator: np.ndarray, counts: np.ndarray,
                          *, draws: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95 % bootstrap interval of exp(sum(numerator)/n) / exp(sum(denominator)/n) - 1, in
    percent, resampling whole sequences (windows) with both models' values paired: how far a
    perplexity rise measured on these windows could move on others like them."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(counts), size=(draws, len(counts)))
    n = counts[picks].sum(axis=1)
    rise = 100.0 * np.expm1((numerator[picks].sum(axis=1) - denominator[picks].sum(axis=1)) / n)
    low, high = np.percentile(rise, [2.5, 97.5])
    return float(low), float(high)


def drop_points(reference: float, candidate: float) -> float:
    """Reference minus candidate accuracy in percentage points, rounded to 1e-9: accuracies
    are item counts over n, and 0.71 - 0.70 is 1.0000000000000009 points in binary floating
    point, which failed a 1.0-point budget that two items out of 200 exactly meet."""
    return round(100.0 * (reference - candidate), 9)
