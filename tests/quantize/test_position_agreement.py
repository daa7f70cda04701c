"""Per-position class outputs (a CTC recogniser's characters, a token classifier's tags) are
scored by how often each position keeps FP32's class, and --min-agreement budgets that: a
whole-output cosine can stay near 1 while the decoded text changes."""

from __future__ import annotations

import numpy as np

from frugalml.quantize.checks import Task
from frugalml.quantize.recipe import Budget
from frugalml.quantize.scoring import TaskScorer, classes_per_position


def _recogniser_outputs(flip_share: float) -> tuple[np.ndarray, np.ndarray]:
    """Softmax over 30 classes at 40 positions for 8 lines; the candidate swaps the two top
    classes (near-tied in FP32) at ``flip_share`` of the positions."""
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 1, (8, 40, 30)).astype(np.float32)
    top = logits.argmax(-1)
    second = (top + 1) % 30
    rows, cols = np.indices(top.shape)
    logits[rows, cols, second] = logits[rows, cols, top] - 0.05
    cand = logits.copy()
    flip = rng.random(top.shape) < flip_share
    cand[rows[flip], cols[flip], top[flip]] -= 0.1  # the runner-up now wins
    softmax = [np.exp(x) / np.exp(x).sum(-1, keepdims=True) for x in (logits, cand)]
    return softmax[0], softmax[1]


def test_argmax_agreement_per_position_is_scored_and_budgeted() -> None:
    ref, cand = _recogniser_outputs(0.06)
    expected = float((ref.argmax(-1) == cand.argmax(-1)).mean())
    assert 0.9 < expected < 0.97
    scorer = TaskScorer(Task.OUTPUTS, "probs")
    for i in range(0, 8, 4):  # two batches
        scorer.add({"probs": ref[i:i + 4]}, {"probs": cand[i:i + 4]}, {},
                   np.full(4, -1))
    loose = scorer.report(Budget(min_mean_cosine=0.99))
    assert loose.candidate["position_argmax_agreement"]["probs"] == expected
    assert loose.candidate["mean_cosine_to_fp32"] > 0.999  # the cosine does not see it
    assert loose.within_budget  # no --min-agreement: reported, not budgeted
    strict = scorer.report(Budget(min_mean_cosine=0.99, min_top1_agreement=0.99))
    (check,) = [c for c in strict.checks if c.name.startswith("per-position")]
    assert check.value == expected and not check.passed and not strict.within_budget


def test_only_class_distributions_per_position_are_scored_so() -> None:
    ref, _ = _recogniser_outputs(0.0)
    assert classes_per_position("probs", ref)
    hidden = np.random.default_rng(1).normal(0, 1, (2, 21, 384)).astype(np.float32)
    assert not classes_per_position("token_embeddings", hidden)  # hidden states
    assert classes_per_position("logits", hidden)  # named as logits per position
    assert not classes_per_position("probs", ref[:, 0])  # one distribution per item: top-1
