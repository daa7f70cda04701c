"""Score a streaming model as it runs: FP32 and the candidate over whole evaluation streams,
each carrying its own state, compared step by step.

Per-chunk scoring from a zero state measures a model no one runs, and misses an error that
compounds through the state. The metrics are the ones a streaming detector is judged by:
the agreement of the thresholded decision per frame (step) and of the segments it forms, the
cosine of every output with more than one value per item over the stream, the error of every
one-value output (a cosine over one number is always 1), and the drift of each state at the
end of each stream, per slice of its leading axis (a layer's state may differ in scale).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from frugalml.errors import CalibrationError, QuantizationError
from frugalml.quantize.checks import AccuracyReport, Check, Task
from frugalml.quantize.recipe import Budget
from frugalml.runtime.numerics import row_cosine
from frugalml.runtime.stream import StreamSession

DEFAULT_THRESHOLD = 0.5
# Segments match when their intersection over union reaches this.
SEGMENT_IOU = 0.5


def segments(decisions: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of True in a 1-D decision sequence."""
    padded = np.concatenate([[False], decisions.astype(bool), [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def segment_agreement(reference: np.ndarray, candidate: np.ndarray) -> tuple[int, int, int]:
    """(matched, reference segments, candidate segments): a reference segment is matched by
    a candidate segment overlapping it with IoU >= 0.5 (each used once)."""
    ref, cand = segments(reference), segments(candidate)
    used, matched = set(), 0
    for start, end in ref:
        for j, (s, e) in enumerate(cand):
            inter = min(end, e) - max(start, s)
            if j not in used and inter > 0 and inter / (max(end, e) - min(start, s)) >= SEGMENT_IOU:
                used.add(j)
                matched += 1
                break
    return matched, len(ref), len(cand)


def decision_output(outputs: Mapping[str, np.ndarray], states: Sequence[str],
                    given: str | None) -> str | None:
    """The output whose threshold is the decision: ``given``, else the one output (not a
    state) with one value per item; None when there is no such output."""
    if given is not None:
        return given
    single = [n for n, v in outputs.items()
              if n not in states and v.size == (v.shape[0] if v.ndim else 1)]
    return single[0] if len(single) == 1 else None


class StreamScorer:
    """FP32 and candidate step outputs, stream by stream, and the budget checks."""

    def __init__(self, states: Mapping[str, str], threshold: float, decision: str | None
                 ) -> None:
        self.states, self.threshold, self._given = dict(states), threshold, decision
        self.decision: str | None = None
        self.streams = self.steps = 0
        self._agree = self._positive = 0
        self._matched = self._ref_segments = self._cand_segments = 0
        self._cosines: dict[str, list[np.ndarray]] = {}
        self._errors: dict[str, list[np.ndarray]] = {}
        self._state_end: dict[str, list[float]] = {}

    def add(self, ref: list[dict[str, np.ndarray]], cand: list[dict[str, np.ndarray]],
            state_axes: Mapping[str, int]) -> None:
        """One stream's step outputs of both models (batch of one stream)."""
        self.decision = decision_output(ref[0], list(self.states.values()), self._given)
        for name in ref[0]:
            if name in self.states.values():
                continue
            r = np.stack([s[name].reshape(-1) for s in ref])
            c = np.stack([s[name].reshape(-1) for s in cand])
            if r.shape[1] > 1:
                self._cosines.setdefault(name, []).append(row_cosine(r, c))
            else:
                self._errors.setdefault(name, []).append(np.abs(r - c).reshape(-1))
        if self.decision is not None:
            r = np.array([s[self.decision].reshape(-1)[0] for s in ref]) > self.threshold
            c = np.array([s[self.decision].reshape(-1)[0] for s in cand]) > self.threshold
            self._agree += int((r == c).sum())
            self._positive += int(r.sum())
            m, nr, nc = segment_agreement(r, c)
            self._matched, self._ref_segments = self._matched + m, self._ref_segments + nr
            self._cand_segments += nc
        for state_in, out in self.states.items():
            for i, cos in enumerate(_slice_cosines(ref[-1][out], cand[-1][out],
                                                   state_axes.get(state_in, 0))):
                self._state_end.setdefault(f"{out}[{i}]", []).append(cos)
        self.streams += 1
        self.steps += len(ref)

    def report(self, budget: Budget) -> AccuracyReport:
        """The scores and the checks: frame and segment agreement of the decision, and the
        mean cosine over the stream of every output with more than one value per item."""
        candidate: dict[str, Any] = {}
        checks = []
        if self.decision is not None:
            frames = self._agree / max(self.steps, 1)
            total = self._ref_segments + self._cand_segments
            seg = 1.0 if total == 0 else 2 * self._matched / total
            candidate |= {"frame_agreement_with_fp32": frames, "segment_agreement_with_fp32": seg,
                          "fp32_segments": self._ref_segments,
                          "candidate_segments": self._cand_segments}
            checks += [Check(name="frame agreement with FP32", value=frames,
                             limit=budget.min_frame_agreement,
                             passed=frames >= budget.min_frame_agreement),
                       Check(name="segment agreement with FP32", value=seg,
                             limit=budget.min_detection_agreement,
                             passed=seg >= budget.min_detection_agreement)]
        for name, parts in self._cosines.items():
            mean = float(np.concatenate(parts).mean())
            candidate[f"{name}_mean_cosine"] = mean
            checks.append(Check(name=f"{name} mean cosine over the streams", value=mean,
                                limit=budget.cosine_limit, passed=mean >= budget.cosine_limit))
        for name, parts in self._errors.items():
            errors = np.concatenate(parts)
            candidate[f"{name}_mean_abs_error"] = float(errors.mean())
            candidate[f"{name}_max_abs_error"] = float(errors.max())
        if self._state_end:
            ends = {k: float(np.mean(v)) for k, v in self._state_end.items()}
            candidate["state_end_cosine"] = min(ends.values())
            candidate["state_end_cosine_per_slice"] = ends
        reference = {"streams": self.streams, "steps": self.steps, "threshold": self.threshold,
                     "positive_frames": self._positive / max(self.steps, 1)}
        return AccuracyReport(task=str(Task.STREAMING), output=self.decision or "",
                              items=self.streams, reference=reference, candidate=candidate,
                              checks=tuple(checks))


def _slice_cosines(ref: np.ndarray, cand: np.ndarray, batch_axis: int) -> list[float]:
    """Cosine of a state per index of its first non-batch axis (each layer's state alone)."""
    r, c = np.moveaxis(ref, batch_axis, 0), np.moveaxis(cand, batch_axis, 0)
    if r.ndim < 3:
        return [float(row_cosine(r.reshape(len(r), -1), c.reshape(len(c), -1)).mean())]
    return [float(row_cosine(r[:, i].reshape(len(r), -1), c[:, i].reshape(len(c), -1)).mean())
            for i in range(r.shape[1])]


def stream_task(session: Any, data: Any, given: Task | str | None) -> tuple[Task, str]:
    """The streaming task and its decision output, from the first evaluation step.

    Raises:
        QuantizationError: another task was asked for a stream set.
        CalibrationError: the evaluation part is empty.
    """
    if given not in (None, Task.STREAMING, str(Task.STREAMING)):
        raise QuantizationError(f"Stream data is scored as --task {Task.STREAMING}, not "
                                f"{given}; leave --task out or drop the stream roles.")
    chunks = next(data.streams("evaluation", limit=1), None)
    if not chunks:
        raise CalibrationError("The evaluation part holds no stream; add streams.")
    outputs = StreamSession(session.run, data.roles, data.signature).step(chunks[0])
    return Task.STREAMING, decision_output(outputs, list(data.roles.states.values()),
                                           data.decision) or ""


def measure_streams(ref: Any, cand: Any, data: Any, budget: Budget, *, items: int,
                    deadline: float | None = None) -> AccuracyReport:
    """Run FP32 (``ref``) and the candidate (``cand``) sessions over up to ``items``
    evaluation streams of ``data`` (a :class:`~frugalml.calibration.streams.StreamSet`),
    each model carrying its own state. At ``deadline`` scoring stops after the stream in hand.
    """
    scorer = StreamScorer(data.roles.states, data.threshold, data.decision)
    stopped = False
    for chunks in data.streams("evaluation"):
        if scorer.streams >= items:
            break
        if deadline is not None and scorer.streams and time.monotonic() >= deadline:
            stopped = True
            break
        r = StreamSession(ref.run, data.roles, data.signature)
        c = StreamSession(cand.run, data.roles, data.signature)
        scorer.add([r.step(x) for x in chunks], [c.step(x) for x in chunks],
                   data.roles.batch_axes)
    report = scorer.report(budget)
    return dataclasses.replace(report, stopped_after_items=scorer.streams) if stopped else report
