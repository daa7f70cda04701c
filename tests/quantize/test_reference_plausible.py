"""A decoder's FP32 reference is checked before candidates are graded against it: above the
perplexity of guessing each token by its frequency in the text, the model is not reading the
text as trained (Gemma 3 without its BOS: 2,051), and the deploy stops with the reason."""

from __future__ import annotations

import math

import numpy as np
import pytest

from frugalml.deploy.engine import plausible_reference
from frugalml.errors import CalibrationError
from frugalml.quantize.checks import Task
from frugalml.quantize.recipe import Budget
from frugalml.quantize.scoring import TaskScorer, unigram_perplexity


def test_unigram_perplexity_is_the_exponent_of_the_token_entropy() -> None:
    assert unigram_perplexity(np.array([5, 5, 5, 5, 0, 0])) == pytest.approx(4.0)
    counts = np.array([6, 2, 2])
    p = counts / counts.sum()
    assert unigram_perplexity(counts) == pytest.approx(math.exp(-(p * np.log(p)).sum()))
    assert math.isnan(unigram_perplexity(None))


def _report(sharp: float) -> dict:
    """A language-model report over windows of a repeating 4-token text; the model's logits
    favour the true next token by ``sharp``."""
    rng = np.random.default_rng(0)
    ids = np.tile(np.array([3, 1, 4, 1]), (2, 8))
    logits = rng.normal(size=(2, 32, 8)).astype(np.float32)
    nxt = np.roll(ids, -1, axis=1)
    np.put_along_axis(logits, nxt[..., None], sharp, axis=-1)
    scorer = TaskScorer(Task.LANGUAGE_MODEL, "logits")
    feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
    scorer.add({"logits": logits}, {"logits": logits}, feeds, np.full(2, -1))
    return scorer.report(Budget()).to_dict()


def test_a_reference_that_models_the_text_passes_and_one_that_does_not_stops() -> None:
    good = _report(sharp=8.0)
    # scored tokens 1,4,1,3 repeating: frequencies 1/2, 1/4, 1/4
    assert good["reference"]["unigram_perplexity"] == pytest.approx(2 ** 1.5, rel=0.02)
    assert good["reference"]["perplexity"] < 1.1
    plausible_reference(good)
    bad = _report(sharp=-8.0)  # the true token the least likely: worse than counting
    assert bad["reference"]["perplexity"] > bad["reference"]["unigram_perplexity"]
    with pytest.raises(CalibrationError, match="not reading the text as it was trained"):
        plausible_reference(bad)
    plausible_reference(None)  # a candidate with no scores has nothing to check


def test_a_perplexity_rise_comes_with_a_paired_interval_over_the_windows() -> None:
    """The rise is resampled by whole windows, both models paired: a candidate that is worse on
    every window has an interval above zero, one equal to FP32 an interval of exactly zero."""
    from frugalml.calibration.metrics import paired_ratio_interval

    rng = np.random.default_rng(1)
    ref = rng.uniform(300, 500, size=32)  # summed NLL of 32 windows of 127 predictions
    counts = np.full(32, 127)
    worse = ref + rng.uniform(1, 3, size=32)
    low, high = paired_ratio_interval(worse, ref, counts)
    point = 100 * np.expm1((worse.sum() - ref.sum()) / counts.sum())
    assert 0 < low < point < high < 100 * np.expm1(3 / 127)
    assert paired_ratio_interval(ref, ref, counts) == (0.0, 0.0)
    report = _report(sharp=8.0)
    assert report["candidate"]["perplexity_increase_pct_ci95"] == [0.0, 0.0]
    assert report["candidate"]["windows"] == 2


def test_the_report_row_shows_the_interval_and_a_scoring_cut_short() -> None:
    from frugalml.report.deploy_md import cells

    row = cells({"name": "w4a8-awq", "backend": "nncf", "status": "scored",
                 "size_bytes": 116.7e6, "verified": "verified: natively",
                 "speed": {"ratio_p50": None, "ci95": None, "verdict": "not measured"},
                 "accuracy": {"metric": "perplexity", "fp32": 63.75, "value": 74.59,
                              "delta": 10.84, "budget_met": True, "failures": [],
                              "increase_pct_ci95": [13.97, 19.99], "stopped_after_items": 52}})
    assert row[6] == "+10.8400 (rise 95 % CI +13.97..+19.99 %)"
    assert row[7] == "met (scored on 52 items: the time budget ran out)"
