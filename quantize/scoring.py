"""The task's metric and every output's parts, streamed over evaluation batches into checks.

Each output is scored whole and per channel group (:mod:`frugalml.quantize.parts`) by
mean cosine to FP32, and the cosine limit applies to the worst of them; the task adds what
its users judge it by: top-1 for classifiers, a probe's accuracy for embeddings, perplexity
for language models, detection agreement after NMS for detectors.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from frugalml.calibration.evaluate import score_embeddings
from frugalml.calibration.metrics import (
    drop_points,
    paired_ratio_interval,
    sequence_nll,
    top1_agreement,
    top_k_accuracy,
)
from frugalml.errors import CalibrationError
from frugalml.quantize.checks import AccuracyReport, Check, Task
from frugalml.quantize.detection import DetectionTally, decoder_for
from frugalml.quantize.parts import OutputParts, PartScore
from frugalml.quantize.recipe import Budget
from frugalml.runtime.numerics import row_cosine

# The name of every cosine check ("... of <part>" for a channel group): diagnose predicts
# where its search starts when these are all that failed.
COSINE_CHECK = "mean cosine to FP32"


class TaskScorer:
    """Keeps what ``task``'s metrics need, batch by batch, and turns it into a report."""

    def __init__(self, task: Task, output: str) -> None:
        self.task, self.output = task, output
        self.parts: dict[str, OutputParts] = {}
        self.ref: list[np.ndarray] = []
        self.cand: list[np.ndarray] = []
        self.labels: list[np.ndarray] = []
        # per evaluation window: FP32's and the candidate's summed NLL, and its predictions
        self.window_nll: tuple[list[np.ndarray], list[np.ndarray]] = ([], [])
        self.window_tokens: list[np.ndarray] = []
        self.tokens = 0
        self.token_counts: np.ndarray | None = None  # how often each token is predicted
        self.token_cosine: list[np.ndarray] = []
        self.detections: DetectionTally | None = None
        self.detection_outputs: tuple[str, ...] = ()
        # per-position class outputs: name -> [positions whose argmax matches FP32's, all]
        self.positions: dict[str, list[int]] = {}

    def add(self, ref: dict[str, np.ndarray], cand: dict[str, np.ndarray],
            feeds: dict[str, np.ndarray], labels: np.ndarray,
            truths: list[np.ndarray] | None = None) -> None:
        """One batch: both models' outputs by name, the inputs, the labels and, for a
        detector, each image's labelled boxes."""
        r, c = ref[self.output], cand[self.output]
        self.labels.append(labels)
        if self.task is Task.LANGUAGE_MODEL:
            self._add_language_model(r, c, feeds)
            return
        if self.task is Task.OBJECT_DETECTION and self.detections is None:
            decoder, self.detection_outputs = decoder_for(ref)
            self.detections = DetectionTally(decoder)
        for name, value in ref.items():
            if name not in self.detection_outputs or len(self.detection_outputs) == 1:
                # A model's own NMS outputs hold a varying number of rows: no items to pair.
                self.parts.setdefault(name, OutputParts(name)).add(value, cand[name])
            if classes_per_position(name, value):
                tally = self.positions.setdefault(name, [0, 0])
                tally[0] += int((value.argmax(-1) == cand[name].argmax(-1)).sum())
                tally[1] += int(np.prod(value.shape[:-1]))
        if self.detections is not None:
            self.detections.add(ref, cand, truths, _image_size(feeds))
        elif self.task in (Task.CLASSIFICATION, Task.EMBEDDING):
            self.ref.append(r.reshape(len(r), -1))
            self.cand.append(c.reshape(len(c), -1))

    def _add_language_model(self, r: np.ndarray, c: np.ndarray,
                            feeds: dict[str, np.ndarray]) -> None:
        mask = feeds.get("attention_mask", np.ones_like(feeds["input_ids"]))
        for i, logits in enumerate((r, c)):
            nll, count = sequence_nll(logits, feeds["input_ids"], mask)
            self.window_nll[i].append(nll)
        self.window_tokens.append(count)
        self.tokens += int(count.sum())
        scored = feeds["input_ids"][:, 1:][mask[:, 1:].astype(bool)]
        counts = np.bincount(scored.ravel(), minlength=r.shape[-1])
        self.token_counts = counts if self.token_counts is None else (
            self.token_counts + counts)
        self.token_cosine.append(row_cosine(r.reshape(-1, r.shape[-1]),
                                            c.reshape(-1, c.shape[-1])))

    def report(self, budget: Budget) -> AccuracyReport:
        """The task's metric, each output part's cosine, and the budget checks."""
        if self.task is Task.LANGUAGE_MODEL:
            return self._language_model(budget)
        labels = np.concatenate(self.labels)
        parts = [p for name in self.parts for p in self.parts[name].scores()]
        cosine = next((p.mean_cosine for p in parts if p.label == self.output), float("nan"))
        reference, candidate, checks = self._task_metric(labels, cosine, budget)
        checks = [*checks, *self._position_checks(budget)]
        agreement = {n: a / t for n, (a, t) in self.positions.items() if t}
        return AccuracyReport(
            task=self.task.value, output=self.output, items=len(labels), reference=reference,
            candidate={**candidate,
                       **({"position_argmax_agreement": agreement} if agreement else {}),
                       **({"mean_cosine_to_fp32": cosine,
                                        "worst_part_cosine_to_fp32": min(p.mean_cosine
                                                                         for p in parts)}
                                       if parts and cosine == cosine else {})},
            checks=(*checks, *self._part_checks(parts, budget)),
            parts=tuple({**_part_dict(p), "budgeted": self._budgeted(p)} for p in parts))

    def _part_checks(self, parts: list[PartScore], budget: Budget) -> list[Check]:
        """The cosine limit on the task's output and each of its channel groups; on every
        output when the task is unknown. (A task model's other outputs, e.g. the token states
        beside a sentence embedding, are scored and reported, not budgeted.)"""
        checks: list[Check] = []
        if self.task is Task.CLASSIFICATION and budget.min_mean_cosine is None:
            return checks
        for p in parts:
            if not self._budgeted(p):
                continue
            name = COSINE_CHECK + ("" if p.label == self.output else f" of {p.label}")
            why = f"the whole of {p.output}" if p.channels is None else (
                f"channels {p.label[len(p.output):]} of {p.output} (FP32 spread up to "
                f"{p.fp32_spread:.3g}, scored apart from channels of other scales)")
            checks.append(Check(name=name, value=p.mean_cosine, limit=budget.cosine_limit,
                                passed=p.mean_cosine >= budget.cosine_limit, why=why))
        return checks

    def _position_checks(self, budget: Budget) -> list[Check]:
        """--min-agreement on every per-position class output (a CTC recogniser's characters,
        a token classifier's tags): what users see, where a cosine of 0.945 says neither how
        bad nor where. Not for classifiers, whose top-1 agreement is the same limit."""
        if budget.min_top1_agreement <= 0 or self.task is Task.CLASSIFICATION:
            return []
        return [Check(name=f"per-position argmax agreement of {name}", value=agree / total,
                      limit=budget.min_top1_agreement,
                      passed=agree / total >= budget.min_top1_agreement,
                      why=f"{total} positions: the class FP32 picks at each, kept or not")
                for name, (agree, total) in self.positions.items() if total]

    def _budgeted(self, part: PartScore) -> bool:
        return self.task is Task.OUTPUTS or part.output == self.output

    def _task_metric(self, labels: np.ndarray, cosine: float, budget: Budget
                     ) -> tuple[dict[str, float], dict[str, float], list[Check]]:
        if self.task is Task.OBJECT_DETECTION:
            return self._detection(budget)
        if self.task is Task.CLASSIFICATION:
            return self._classification(labels, budget)
        if self.task is Task.EMBEDDING and len(set(labels[labels >= 0].tolist())) >= 2:
            return self._embedding(labels, budget)
        return {}, {}, []

    def _classification(self, labels: np.ndarray, budget: Budget
                        ) -> tuple[dict[str, float], dict[str, float], list[Check]]:
        ref, cand = np.concatenate(self.ref), np.concatenate(self.cand)
        top1_ref, top1_cand = top_k_accuracy(ref, labels), top_k_accuracy(cand, labels)
        drop = drop_points(top1_ref.value, top1_cand.value)
        agreement = top1_agreement(ref, cand).value
        return ({"top1_accuracy": top1_ref.value},
                {"top1_accuracy": top1_cand.value, "top1_drop_points": drop,
                 "top1_agreement_with_fp32": agreement},
                [Check(name="top-1 drop (points)", value=drop,
                       limit=budget.max_accuracy_drop_points,
                       passed=drop <= budget.max_accuracy_drop_points)]
                + ([Check(name="top-1 agreement with FP32", value=agreement,
                          limit=budget.min_top1_agreement,
                          passed=agreement >= budget.min_top1_agreement)]
                   if budget.min_top1_agreement > 0 else []))  # 0 is no limit: no check

    def _embedding(self, labels: np.ndarray, budget: Budget
                   ) -> tuple[dict[str, float], dict[str, float], list[Check]]:
        score = score_embeddings(np.concatenate(self.ref), np.concatenate(self.cand), labels)
        drop = score.accuracy_drop_points
        return ({"probe_accuracy": score.reference_accuracy},
                {"probe_accuracy": score.candidate_accuracy, "probe_drop_points": drop,
                 "min_cosine_to_fp32": score.min_cosine},
                [Check(name="probe accuracy drop (points)", value=drop,
                       limit=budget.max_accuracy_drop_points,
                       passed=drop <= budget.max_accuracy_drop_points)])

    def _detection(self, budget: Budget
                   ) -> tuple[dict[str, float], dict[str, float], list[Check]]:
        tally = self.detections
        if tally is None or not tally.fp32_detections:
            raise CalibrationError(
                "FP32 finds no detection scoring 0.25 or more on the evaluation images, so "
                "detection agreement cannot be measured: calibrate with images of the objects "
                "the model detects, preprocessed as it was trained (--letterbox, --scale).")
        summary = tally.summary()
        agreement = summary["detection_agreement_with_fp32"]
        reference: dict[str, float] = {"detections": tally.fp32_detections}
        checks = []
        if any(len(t) for t in tally.truths):
            reference["map50"], summary["map50"] = tally.map50()
            drop = drop_points(reference["map50"], summary["map50"])
            summary["map50_drop_points"] = drop
            checks.append(Check(name="mAP@0.5 drop (points)", value=drop,
                                limit=budget.max_accuracy_drop_points,
                                passed=drop <= budget.max_accuracy_drop_points,
                                why=f"on {len(tally.truths)} images with labelled boxes"))
        return (reference, summary, checks + [
                Check(name="detection agreement with FP32", value=agreement,
                       limit=budget.min_detection_agreement,
                       passed=agreement >= budget.min_detection_agreement,
                       why=f"{tally.matched} of {tally.fp32_detections} FP32 detections kept "
                           f"(same class, IoU >= 0.5); top detection kept on "
                           f"{tally.top_kept} of {tally.images_with_detections} images")])

    def _language_model(self, budget: Budget) -> AccuracyReport:
        if not self.tokens:
            raise CalibrationError("Perplexity needs at least two tokens in some sequence.")
        ref_nll, cand_nll = (np.concatenate(n) for n in self.window_nll)
        counts = np.concatenate(self.window_tokens)
        ref_ppl, cand_ppl = (math.exp(n.sum() / self.tokens) for n in (ref_nll, cand_nll))
        rise = 100.0 * (cand_ppl / ref_ppl - 1.0)
        interval = paired_ratio_interval(cand_nll, ref_nll, counts)
        cosine = float(np.concatenate(self.token_cosine).mean())
        return AccuracyReport(
            task=self.task.value, output=self.output, items=self.tokens,
            reference={"perplexity": ref_ppl,
                       "unigram_perplexity": unigram_perplexity(self.token_counts)},
            candidate={
                "perplexity": cand_ppl, "perplexity_increase_pct": rise,
                "perplexity_increase_pct_ci95": list(interval), "windows": len(counts),
                "mean_token_cosine_to_fp32": cosine},
            checks=(Check(name="perplexity increase %", value=rise,
                          limit=budget.max_perplexity_increase_pct,
                          passed=rise <= budget.max_perplexity_increase_pct),))


def unigram_perplexity(counts: np.ndarray | None) -> float:
    """The perplexity of guessing every scored token by its frequency among the scored tokens
    themselves: what a decoder that has learnt nothing of the text but its word counts scores.
    A trained decoder given its text as it expects it scores far below (SmolLM2 on 64 windows
    of Shakespeare: 60 against 326); an FP32 reference above it means the text reached the model
    in a form it was not trained on."""
    if counts is None or not counts.sum():
        return float("nan")
    p = counts[counts > 0] / counts.sum()
    return float(np.exp(-(p * np.log(p)).sum()))


def classes_per_position(name: str, fp32: np.ndarray) -> bool:
    """True for an output that holds a class distribution per position on its last axis:
    rank 3 or more, at least 2 classes, and softmax values (non-negative, summing to 1) or a
    name that says logits/probabilities. Hidden states and embeddings are neither."""
    if fp32.ndim < 3 or fp32.shape[-1] < 2 or not np.issubdtype(fp32.dtype, np.floating):
        return False
    if any(word in name.lower() for word in ("logit", "prob")):
        return True
    return bool(fp32.min() >= 0 and np.allclose(fp32.sum(-1), 1.0, atol=1e-3))


def _image_size(feeds: dict[str, np.ndarray]) -> tuple[int, int] | None:
    """(width, height) of the image input (NCHW, or NHWC when axis 1 is not 1 or 3 long)."""
    image = next((v for v in feeds.values() if v.ndim == 4), None)
    if image is None:
        return None
    nchw = image.shape[1] in (1, 3)
    return (image.shape[3], image.shape[2]) if nchw else (image.shape[2], image.shape[1])


def _part_dict(p: PartScore) -> dict[str, Any]:
    return {"part": p.label, "output": p.output, "axis": p.axis,
            "channels": list(p.channels) if p.channels is not None else None,
            "fp32_spread": None if math.isnan(p.fp32_spread) else p.fp32_spread,
            "mean_cosine_to_fp32": p.mean_cosine, "min_cosine_to_fp32": p.min_cosine}
