"""Score a quantized model against its FP32 source on the evaluation part, per task.

The task is read from the model and the data: a ``sentence_embedding`` output is an embedding
model (cosine, and a probe's accuracy when the items are labelled), ``input_ids`` in and 3-D
logits out a language model (perplexity), 2-D outputs with labels a classifier (top-1 and
agreement with FP32), anything else is compared by output cosine.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from frugalml.calibration.metrics import drop_points, perplexity, top1_agreement, top_k_accuracy
from frugalml.errors import CalibrationError, InputError, QuantizationError
from frugalml.quantize._protocol import CalibrationData
from frugalml.quantize.recipe import Budget
from frugalml.runtime.numerics import row_cosine


class Task(StrEnum):
    """What the model's outputs mean, which decides the metric."""

    CLASSIFICATION = "classification"
    EMBEDDING = "embedding"
    LANGUAGE_MODEL = "language-model"
    OUTPUTS = "outputs"


_BATCH = {Task.CLASSIFICATION: 32, Task.EMBEDDING: 32, Task.LANGUAGE_MODEL: 2,
          Task.OUTPUTS: 16}


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Check:
    """One budget limit, the measured value, whether it meets it and, when it fails, why."""

    name: str
    value: float
    limit: float
    passed: bool
    why: str = ""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class AccuracyReport:
    """FP32 and candidate on the same evaluation items, and the budget checks."""

    task: str
    output: str
    items: int
    reference: dict[str, float]
    candidate: dict[str, float]
    checks: tuple[Check, ...]

    @property
    def within_budget(self) -> bool:
        """Every check passed."""
        return all(c.passed for c in self.checks)

    def failures(self) -> list[str]:
        """One line per failed check."""
        return [f"{c.name} {c.value:.4f} (limit {c.limit})" for c in self.checks if not c.passed]

    def with_check(self, check: Check) -> AccuracyReport:
        """This report with one more check (the size check is added by the caller)."""
        return dataclasses.replace(self, checks=(*self.checks, check))

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form, including the verdict."""
        return {**dataclasses.asdict(self), "within_budget": self.within_budget}


def model_backend(path: Path) -> str:
    """The runtime backend that runs a model file."""
    return "openvino" if Path(path).suffix == ".xml" else "onnxruntime"


def open_model(path: Path, threads: int = 0, hints: Mapping[str, str] | None = None) -> Any:
    """A runtime session for an ONNX or OpenVINO model file, with backend ``hints``."""
    from frugalml.runtime.backends import get_backend

    return get_backend(model_backend(path)).open(Path(path), threads=threads, hints=hints)


def _task(outputs: dict[str, np.ndarray], feeds: dict[str, np.ndarray], labels: np.ndarray
          ) -> tuple[Task, str]:
    if "sentence_embedding" in outputs:
        return Task.EMBEDDING, "sentence_embedding"
    name = "logits" if "logits" in outputs else next(iter(outputs))
    if "input_ids" in feeds and outputs[name].ndim == 3:
        return Task.LANGUAGE_MODEL, name
    if outputs[name].ndim == 2 and (labels >= 0).any():
        return Task.CLASSIFICATION, name
    return Task.OUTPUTS, name


def task_of(session: Any, data: CalibrationData) -> tuple[Task, str]:
    """The task and the output its metrics read, from one evaluation item through FP32.

    Raises:
        CalibrationError: the evaluation part is empty or does not fit the model.
    """
    first = next(_batches(data, 1, 1), None)
    if first is None:
        raise CalibrationError("The evaluation part is empty; nothing to score the "
                               "quantized model on. Use a larger data set.")
    return _task(_run(session, first[0], "FP32"), *first)


def batches(data: CalibrationData, items: int, task: Task
            ) -> Iterator[tuple[dict[str, np.ndarray], np.ndarray]]:
    """Up to ``items`` evaluation items in the task's batch size."""
    return _batches(data, items, _BATCH[task])


def _batches(data: CalibrationData, items: int, batch: int
             ) -> Iterator[tuple[dict[str, np.ndarray], np.ndarray]]:
    """Up to ``items`` evaluation items in batches (the whole part if it holds fewer)."""
    seen = 0
    for feeds, labels in data.batches("evaluation", batch_size=batch):
        if seen >= items:
            return
        take = min(len(labels), items - seen)
        seen += take
        yield ({k: v[:take] for k, v in feeds.items()}, labels[:take])


def _run(session: Any, feeds: dict[str, np.ndarray], which: str) -> dict[str, np.ndarray]:
    try:
        return session.run(feeds)
    except InputError as e:
        raise CalibrationError(f"The {which} model cannot run the evaluation data: {e}") from e


def measure(reference: Path, candidate: Path, data: CalibrationData, budget: Budget, *,
            items: int = 500, threads: int = 0,
            candidate_hints: Mapping[str, str] | None = None) -> AccuracyReport:
    """Run both models on up to ``items`` evaluation items and check ``budget``.

    ``candidate_hints`` open the candidate differently from a deployed one, e.g. unfused for
    a target that is not this CPU (see :func:`frugalml.quantize.api.quantize`).

    Raises:
        CalibrationError: the evaluation part is empty or does not fit the models.
    """
    ref, cand = open_model(reference, threads), open_model(candidate, threads, candidate_hints)
    try:
        task, output = task_of(ref, data)
        key = _reference_key(reference, data, items, output)
        cached = _REFERENCE_OUTPUTS.get(key)
        kept = _new_kept()
        refs: list[np.ndarray] = []
        for i, (feeds, labels) in enumerate(_batches(data, items, _BATCH[task])):
            r = cached[i] if cached else _run(ref, feeds, "FP32")[output]
            if task is not Task.LANGUAGE_MODEL:
                refs.append(r)
            _keep(kept, r, _run(cand, feeds, "quantized")[output], feeds, labels, task)
    finally:
        ref.close()
        cand.close()
    if refs and sum(r.nbytes for r in refs) < _CACHE_BYTES:
        _REFERENCE_OUTPUTS.clear()  # one entry: the FP32 model a search keeps re-scoring against
        _REFERENCE_OUTPUTS[key] = refs
    return _score(task, output, kept, budget)


# FP32 outputs of the last scored (model file, data, items): diagnose and benchmarks score many
# candidates against one FP32 model, and recomputing its outputs was a third of each attempt.
# Language-model logits are too large to keep (items x tokens x vocabulary).
_REFERENCE_OUTPUTS: dict[tuple[Any, ...], list[np.ndarray]] = {}
_CACHE_BYTES = 256 << 20


def _reference_key(path: Path, data: CalibrationData, items: int, output: str
                   ) -> tuple[Any, ...]:
    stat = Path(path).stat()
    return (str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns, data.fingerprint,
            items, output)


def _new_kept() -> dict[str, Any]:
    return {"ref": [], "cand": [], "labels": [], "nll": [0.0, 0.0], "tokens": 0, "cosine": []}


def _keep(kept: dict[str, Any], r: np.ndarray, c: np.ndarray, feeds: dict[str, np.ndarray],
          labels: np.ndarray, task: Task) -> None:
    """Keep what the task's metrics need: whole outputs, or running sums for language models."""
    if task is Task.LANGUAGE_MODEL:
        mask = feeds.get("attention_mask", np.ones_like(feeds["input_ids"]))
        for i, logits in enumerate((r, c)):
            ppl = perplexity(logits, feeds["input_ids"], mask)
            kept["nll"][i] += math.log(ppl.value) * ppl.count
        kept["tokens"] += ppl.count
        kept["cosine"].append(row_cosine(r.reshape(-1, r.shape[-1]), c.reshape(-1, c.shape[-1])))
        return
    kept["ref"].append(r.reshape(len(r), -1))
    kept["cand"].append(c.reshape(len(c), -1))
    kept["labels"].append(labels)


def _score(task: Task, output: str, kept: dict[str, Any], budget: Budget) -> AccuracyReport:
    if task is Task.LANGUAGE_MODEL:
        ref_ppl, cand_ppl = (math.exp(n / kept["tokens"]) for n in kept["nll"])
        rise = 100.0 * (cand_ppl / ref_ppl - 1.0)
        cosine = float(np.concatenate(kept["cosine"]).mean())
        return AccuracyReport(
            task=task.value, output=output, items=kept["tokens"],
            reference={"perplexity": ref_ppl}, candidate={
                "perplexity": cand_ppl, "perplexity_increase_pct": rise,
                "mean_token_cosine_to_fp32": cosine},
            checks=(Check(name="perplexity increase %", value=rise,
                          limit=budget.max_perplexity_increase_pct,
                          passed=rise <= budget.max_perplexity_increase_pct),))
    ref, cand = np.concatenate(kept["ref"]), np.concatenate(kept["cand"])
    labels = np.concatenate(kept["labels"])
    cosine = float(row_cosine(ref, cand).mean())
    cos_check = Check(name="mean cosine to FP32", value=cosine, limit=budget.min_mean_cosine,
                      passed=cosine >= budget.min_mean_cosine)
    if task is Task.CLASSIFICATION:
        top1_ref, top1_cand = top_k_accuracy(ref, labels), top_k_accuracy(cand, labels)
        drop = drop_points(top1_ref.value, top1_cand.value)
        agreement = top1_agreement(ref, cand).value
        return AccuracyReport(
            task=task.value, output=output, items=len(labels),
            reference={"top1_accuracy": top1_ref.value},
            candidate={"top1_accuracy": top1_cand.value, "top1_drop_points": drop,
                       "top1_agreement_with_fp32": agreement,
                       "mean_cosine_to_fp32": cosine},
            checks=(Check(name="top-1 drop (points)", value=drop,
                          limit=budget.max_accuracy_drop_points,
                          passed=drop <= budget.max_accuracy_drop_points),
                    Check(name="top-1 agreement with FP32", value=agreement,
                          limit=budget.min_top1_agreement,
                          passed=agreement >= budget.min_top1_agreement)))
    if task is Task.EMBEDDING and len(set(labels[labels >= 0].tolist())) >= 2:
        from frugalml.calibration.evaluate import score_embeddings

        score = score_embeddings(ref, cand, labels)
        drop = score.accuracy_drop_points
        return AccuracyReport(
            task=task.value, output=output, items=len(labels),
            reference={"probe_accuracy": score.reference_accuracy},
            candidate={"probe_accuracy": score.candidate_accuracy, "probe_drop_points": drop,
                       "mean_cosine_to_fp32": cosine, "min_cosine_to_fp32": score.min_cosine},
            checks=(cos_check, Check(name="probe accuracy drop (points)", value=drop,
                                     limit=budget.max_accuracy_drop_points,
                                     passed=drop <= budget.max_accuracy_drop_points)))
    return AccuracyReport(task=task.value, output=output, items=len(labels), reference={},
                          candidate={"mean_cosine_to_fp32": cosine}, checks=(cos_check,))


def size_check(reference_bytes: int, candidate_bytes: int, budget: Budget) -> Check:
    """The candidate's size on disk relative to FP32 against ``budget.max_size_ratio``."""
    if reference_bytes <= 0:
        raise QuantizationError("The FP32 model has no size on disk; cannot compare sizes.")
    ratio = candidate_bytes / reference_bytes
    return Check(name="size vs FP32", value=ratio, limit=budget.max_size_ratio,
                 passed=ratio <= budget.max_size_ratio)


__all__ = ["AccuracyReport", "Check", "Task", "measure", "model_backend", "open_model",
           "size_check"]
