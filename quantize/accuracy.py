"""Score a quantized model against its FP32 source on the evaluation part, per task.

The task is read from the model and the data: a ``sentence_embedding`` output is an embedding
model (cosine, and a probe's accuracy when the items are labelled), ``input_ids`` in and 3-D
logits out a language model (perplexity), 2-D outputs with labels a classifier (top-1 and
agreement with FP32), anything else is compared by output cosine.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from frugalml.errors import CalibrationError, InputError, QuantizationError
from frugalml.export.model_info import recorded_layout
from frugalml.quantize._protocol import CalibrationData
from frugalml.quantize.checks import AccuracyReport, Check, Task
from frugalml.quantize.detection import nms_outputs, yolo_layout
from frugalml.quantize.recipe import Budget
from frugalml.quantize.scoring import TaskScorer
from frugalml.quantize.streaming import measure_streams, stream_task
from frugalml.runtime.backends import backend_for, get_backend
from frugalml.runtime.generate import DecoderLayout, prefill_feeds
from frugalml.runtime.roles import InputRoles

_BATCH = {Task.CLASSIFICATION: 32, Task.EMBEDDING: 32, Task.LANGUAGE_MODEL: 2,
          Task.OBJECT_DETECTION: 1, Task.OUTPUTS: 16,  # detectors: NMS outputs are per image
          Task.STREAMING: 16}  # steps from FP32's state (scoring itself runs whole streams)


def open_model(path: Path, threads: int = 0, hints: Mapping[str, str] | None = None,
               layout: DecoderLayout | None = None) -> Any:
    """A runtime session for an ONNX or OpenVINO model file, with backend ``hints``; a
    KV-cache decoder (``layout``, else its stage record's) is run as a whole-window prefill."""
    session = get_backend(backend_for(path)).open(Path(path), threads=threads, hints=hints)
    layout = layout or recorded_layout(path)
    return _Prefill(session, layout) if layout is not None else session


def filled_by_prefill(path: Path) -> frozenset[str]:
    """Inputs of a KV-cache decoder that scoring fills itself (positions, the empty cache);
    empty for every other model."""
    layout = recorded_layout(path)
    return frozenset() if layout is None else frozenset({"position_ids", *layout.past_inputs})


class _Prefill:
    """A KV-cache decoder scored like any model: whole windows run as a prefill with nothing
    cached (positions from the mask, empty past), so perplexity is the cached graph's own.
    The present outputs are dropped: scores read logits only."""

    def __init__(self, session: Any, layout: DecoderLayout) -> None:
        self._session = session
        self.layout = layout

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        full = prefill_feeds(self.layout, feeds["input_ids"], feeds.get("attention_mask"))
        return {"logits": self._session.run(full)["logits"]}

    def close(self) -> None:
        self._session.close()


def _task(outputs: dict[str, np.ndarray], feeds: dict[str, np.ndarray], labels: np.ndarray,
          given: Task | None = None) -> tuple[Task, str]:
    """The task and the output its metric reads: ``given`` (checked), else inferred."""
    heads = [k for k, v in outputs.items() if yolo_layout(v) is not None]
    nms = nms_outputs(outputs)
    if given is Task.OBJECT_DETECTION or (given is None and (heads or nms)):
        if not heads and nms is None:
            raise QuantizationError(
                f"--task object-detection needs a YOLO-style output [N, 4+C, anchors] or "
                f"[N, anchors, 4+C] (boxes in pixels, then class scores in [0, 1]), or NMS "
                f"outputs named boxes/scores/labels; this model's outputs are "
                f"{_shapes(outputs)}.")
        return Task.OBJECT_DETECTION, heads[0] if heads else nms[0]
    if "sentence_embedding" in outputs and given in (None, Task.EMBEDDING):
        return Task.EMBEDDING, "sentence_embedding"
    name = "logits" if "logits" in outputs else next(iter(outputs))
    if given is not None:
        return given, name
    if "input_ids" in feeds and outputs[name].ndim == 3:
        return Task.LANGUAGE_MODEL, name
    if outputs[name].ndim == 2 and (labels >= 0).any():
        return Task.CLASSIFICATION, name
    return Task.OUTPUTS, name


def _shapes(outputs: dict[str, np.ndarray]) -> str:
    return ", ".join(f"{k} {list(v.shape)}" for k, v in outputs.items())


def task_of(session: Any, data: CalibrationData, given: Task | str | None = None
            ) -> tuple[Task, str]:
    """The task and the output its metrics read, from one evaluation item through FP32.

    Raises:
        CalibrationError: the evaluation part is empty or does not fit the model.
        QuantizationError: ``given`` is not a task, or the model's outputs do not fit it.
    """
    if hasattr(data, "streams"):  # a stream set: scored over streams carrying state

        return stream_task(session, data, given)
    first = next(_batches(data, 1, 1), None)
    if first is None:
        raise CalibrationError("The evaluation part is empty; nothing to score the "
                               "quantized model on. Use a larger data set.")
    return _task(_run(session, first[0], "FP32"), *first, task_named(given))


def task_named(name: Task | str | None) -> Task | None:
    """The :class:`Task` called ``name`` (None: infer it from the model).

    Raises:
        QuantizationError: no task has that name.
    """
    if name is None or isinstance(name, Task):
        return name
    try:
        return Task(name)
    except ValueError:
        raise QuantizationError(f"Unknown task {name!r}; known tasks: "
                                f"{', '.join(t.value for t in Task)}.") from None


def batches(data: CalibrationData, items: int, task: Task
            ) -> Iterator[tuple[dict[str, np.ndarray], np.ndarray]]:
    """Up to ``items`` evaluation items in the task's batch size."""
    return _batches(data, items, _BATCH[task])


def _batches(data: CalibrationData, items: int, batch: int
             ) -> Iterator[tuple[dict[str, np.ndarray], np.ndarray]]:
    """Up to ``items`` evaluation items in batches (the whole part if it holds fewer), texts
    grouped by length: the same items, padded less (2.8x faster on MiniLM's reviews).

    The limit is asked of the set where it can say its size: grouping sorts within windows, so
    cutting after the fact would keep the shortest texts of the last window."""
    size = getattr(data, "size", None)  # stream sets count steps, not items: no limit there
    limit = min(items, size("evaluation")) if size is not None else None
    seen = 0
    for feeds, labels in data.batches("evaluation", batch_size=batch, limit=limit,
                                      by_length=True):
        if seen >= items:
            return
        take = min(len(labels), items - seen)
        seen += take
        if take == len(labels):
            yield feeds, labels
            continue
        roles = getattr(data, "roles", None) or InputRoles()  # stream steps: their axes
        yield roles.head(feeds, take), labels[:take]


def _run(session: Any, feeds: dict[str, np.ndarray], which: str) -> dict[str, np.ndarray]:
    try:
        return session.run(feeds)
    except InputError as e:
        raise CalibrationError(f"The {which} model cannot run the evaluation data: {e}") from e


def measure(reference: Path, candidate: Path, data: CalibrationData, budget: Budget, *,
            items: int = 500, threads: int = 0, task: Task | str | None = None,
            candidate_hints: Mapping[str, str] | None = None,
            deadline: float | None = None,
            layout: DecoderLayout | None = None) -> AccuracyReport:
    """Run both models on up to ``items`` evaluation items and check ``budget``.

    Every output is scored, and every channel group of an output whose FP32 channel ranges
    differ (:mod:`frugalml.quantize.parts`); ``task`` (inferred when None) adds its metric.
    ``candidate_hints`` open the candidate differently from a deployed one, e.g. unfused for
    a target that is not this CPU (see :func:`frugalml.quantize.api.quantize`). At
    ``deadline`` (``time.monotonic()``) scoring stops after the batch in hand, and the report
    says how many items it scored (``stopped_after_items``). ``layout``: the candidate's
    decoder layout while it has no stage record yet (the quantize stage scores before it
    writes one); the reference's is its record's.

    Raises:
        CalibrationError: the evaluation part is empty or does not fit the models.
        QuantizationError: ``task`` does not fit the model's outputs.
    """
    ref = open_model(reference, threads)
    cand = open_model(candidate, threads, candidate_hints, layout)
    try:
        if hasattr(data, "streams"):
            return measure_streams(ref, cand, data, budget, items=items, deadline=deadline)
        task, output = task_of(ref, data, task)
        key = _reference_key(reference, data, items, task)
        cached = _REFERENCE_OUTPUTS.get(key)
        kept = TaskScorer(task, output)
        truths = _boxes(data) if task is Task.OBJECT_DETECTION else None
        refs: list[dict[str, np.ndarray]] = []
        scored, stopped = 0, False
        for i, (feeds, labels) in enumerate(_batches(data, items, _BATCH[task])):
            if deadline is not None and scored and time.monotonic() >= deadline:
                stopped = True
                break
            r = cached[i] if cached else _run(ref, feeds, "FP32")
            if task is not Task.LANGUAGE_MODEL:
                refs.append(r)
            kept.add(r, _run(cand, feeds, "quantized"), feeds, labels,
                     truths=None if truths is None else [next(truths) for _ in labels])
            scored += len(labels)
    finally:
        ref.close()
        cand.close()
    if refs and not stopped and sum(v.nbytes for r in refs for v in r.values()) < _CACHE_BYTES:
        _REFERENCE_OUTPUTS.clear()  # one entry: the FP32 model a search keeps re-scoring against
        _REFERENCE_OUTPUTS[key] = refs
    report = kept.report(budget)
    return dataclasses.replace(report, stopped_after_items=scored) if stopped else report


def _boxes(data: CalibrationData) -> Iterator[np.ndarray] | None:
    """The evaluation items' labelled boxes, when the data has them (an image folder with
    boxes.json)."""
    reader = getattr(data, "boxes", None)
    return reader("evaluation") if reader is not None else None


# FP32 outputs of the last scored (model file, data, items): diagnose and benchmarks score many
# candidates against one FP32 model, and recomputing its outputs was a third of each attempt.
# Language-model logits are too large to keep (items x tokens x vocabulary).
_REFERENCE_OUTPUTS: dict[tuple[Any, ...], list[dict[str, np.ndarray]]] = {}
_CACHE_BYTES = 256 << 20


def _reference_key(path: Path, data: CalibrationData, items: int, task: Task
                   ) -> tuple[Any, ...]:
    stat = Path(path).stat()
    return (str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns, data.fingerprint,
            items, task)


def size_check(reference_bytes: int, candidate_bytes: int, budget: Budget) -> Check:
    """The candidate's size on disk relative to FP32 against ``budget.max_size_ratio``."""
    if reference_bytes <= 0:
        raise QuantizationError("The FP32 model has no size on disk; cannot compare sizes.")
    ratio = candidate_bytes / reference_bytes
    return Check(name="size vs FP32", value=ratio, limit=budget.max_size_ratio,
                 passed=ratio <= budget.max_size_ratio)


__all__ = ["AccuracyReport", "Check", "Task", "measure", "open_model",
           "size_check", "task_named"]
