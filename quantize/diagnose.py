"""`frugal diagnose`: find the layers that break an INT8 model's accuracy, and keep the fewest
of them in float that bring it within budget.

1. Quantize everything and score it (if it meets the budget there is nothing to fix).
2. Ask the backend once which activation-only nodes (Add, Concat ...) it can take out of
   int8: quantize again with all of them excluded, unscored, and drop from the ranking those
   still reading int8 (ONNX Runtime shares a residual Add's Q/DQ pair with the next MatMul).
3. Sensitivity: put one node at a time back in float (:mod:`~frugalml.quantize.sensitivity`,
   no re-quantization) and measure how much of the output cosine to FP32 it recovers on a
   few evaluation items.
4. Predict where to start: when only cosine checks failed, bisect on the same cheap probe
   (the top k ranked nodes back in float) for the fewest that reach the cosine limit.
5. Search: keep the top k ranked nodes in float, quantizing again through the backend each
   time (``nodes_to_exclude`` / ``IgnoredScope``) and scoring against the whole budget: from
   the predicted k (else 1), step away by 1, 2, 4, ... until the verdict flips, then bisect
   to the smallest passing count. A point costs a quantization and a scoring (~12 s on
   MiniLM on 2 cores), a probe ~1 s, step 2 ~7 s.

The exclusion list is ONNX node names, which both backends accept.
"""
from __future__ import annotations

import dataclasses
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from frugalml.core.atomic import staged
from frugalml.core.progress import Steps
from frugalml.core.records import write_json_atomic
from frugalml.errors import QuantizationError
from frugalml.export.model_info import ModelInfo
from frugalml.quantize._protocol import CalibrationData
from frugalml.quantize.accuracy import open_model
from frugalml.quantize.api import RECORD_NAME, model_file, quantize
from frugalml.quantize.recipe import Precision, Recipe, get_recipe
from frugalml.quantize.sensitivity import (
    Probe,
    Sensitivity,
    activation_only,
    kept_in_int8,
    predicted_start,
    quantized_nodes,
    rank_layers,
)
from frugalml.runtime.formats import is_onnx

DIAGNOSIS_NAME = "diagnosis.json"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Diagnosis:
    """What `diagnose` measured and the exclusion list it chose."""

    backend: str
    precision: str
    layers: int
    baseline: dict[str, Any]
    ranking: tuple[Sensitivity, ...]
    ignored_nodes: tuple[str, ...]
    final: dict[str, Any]
    tries: tuple[dict[str, Any], ...]
    size_bytes: dict[str, int]
    size_within_budget: bool
    latency_ms: dict[str, float]
    seconds: float
    # Why the search stopped before bisection finished ("" when it finished).
    stopped_early: str = ""
    # Float nodes at the search's first point (predicted from the probe, or 1; 0: no search).
    first_point: int = 0
    # Activation-only nodes the backend kept in int8 when told to exclude them: not ranked.
    kept_in_int8: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return dataclasses.asdict(self)


def _latency_ms(path: Path, feeds: dict[str, np.ndarray], runs: int = 30) -> float:
    """Median single-input latency: informative only (speed is judged in bench/)."""
    session = open_model(path)
    try:
        session.run(feeds)
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            session.run(feeds)
            times.append(time.perf_counter() - start)
    finally:
        session.close()
    return round(1000 * float(np.median(times)), 3)


def diagnose(model: Path | ModelInfo, data: CalibrationData, out_dir: Path, *,
             recipe: Recipe | str = "int8",
             backend: str = "onnxruntime", target: Any = "auto", eval_items: int = 300,
             probe_items: int = 64, task: str | None = None, steps: Steps | None = None,
             deadline: float | None = None, first: Any = None,
             output_format: str = "onnx") -> Diagnosis:
    """Find the culprit layers, keep the fewest in float that meet the budget, write ``out_dir``.

    ``out_dir`` gets the fixed model and ``quantize.json`` (as `frugal quantize` writes them)
    plus ``diagnosis.json``. At ``deadline`` (``time.monotonic()``) the search stops: the
    fewest-float passing point found so far is kept, and the diagnosis says it stopped early.
    ``first``: the all-INT8 point when the caller built and scored it already (a deploy's
    first try of the candidate, the same recipe and data), so it is not built again.

    ``output_format="openvino"`` (NNCF): each point an IR, its float nodes at the recipe's
    ``float_precision`` (bf16 where native), ranked on the backend's ONNX twin (Q/DQ pairs
    can be taken out one at a time; the IR keeps the ONNX node names).

    Raises:
        QuantizationError: the recipe is not INT8, or the budget is not met even with every
            ranked layer in float (or by any point tried before the deadline).
    """
    steps = steps or Steps(quiet=True)
    start = time.perf_counter()
    recipe = get_recipe(recipe) if isinstance(recipe, str) else recipe
    size_limit = recipe.budget.max_size_ratio
    # The search judges accuracy; layers in float cost size, which is reported, not searched.
    recipe = dataclasses.replace(recipe, budget=dataclasses.replace(
        recipe.budget, max_size_ratio=max(size_limit, 1.01)))
    if recipe.precision is not Precision.INT8 or recipe.dynamic_activations:
        kind = "dynamic int8" if recipe.dynamic_activations else recipe.precision
        raise QuantizationError(f"diagnose searches static INT8 layers; the recipe is {kind}. "
                                "Use --recipe int8.")
    source = model_file(model)
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir.parent, prefix=f".{out_dir.name}.diag-") as tmp:
        def attempt(ignored: tuple[str, ...], dest: str, fmt: str = output_format,
                    base: Recipe = recipe, items: int = eval_items) -> Any:
            return quantize(model, data, Path(tmp) / dest, recipe=dataclasses.replace(
                base, ignored_nodes=base.ignored_nodes + ignored), backend=backend,
                target=target, output_format=fmt, eval_items=items,
                allow_over_budget=True, task=task, steps=steps)

        full = first or attempt((), "full")
        tries = [_try((), full)]
        ranking: tuple[Sensitivity, ...] = ()
        chosen, stopped, first_point, kept = full, "", 0, ()
        if not full.accuracy["within_budget"]:
            probe, ranking, kept = _rank(full, attempt, recipe, source, data,
                                         probe_items, task, steps)
            first_point = predicted_start(probe, ranking, full.accuracy)
            chosen, stopped = _search(ranking, lambda k: attempt(
                tuple(s.node for s in ranking[:k]), f"k{k}"), tries, deadline,
                start=first_point)
        return _write(out_dir, chosen, full, source, data, ranking, tries, backend, recipe,
                      size_limit, time.perf_counter() - start, stopped, first_point, kept)


def _rank(full: Any, attempt: Callable[..., Any], recipe: Recipe, source: Path,
          data: CalibrationData, probe_items: int, task: str | None,
          steps: Steps) -> tuple[Probe, tuple[Sensitivity, ...], tuple[str, ...]]:
    """The probe on ``full`` (or its ONNX twin), the ranking of the nodes the backend can
    take out of int8, and the activation-only nodes it keeps reading int8 when told not to."""
    twin = recipe if is_onnx(full.path) else dataclasses.replace(
        recipe, float_precision="fp32")  # only OpenVINO computes bf16
    probe = Probe(full.path if is_onnx(full.path) else attempt(
        (), "onnx-twin", "onnx", twin).path, source, data, probe_items, task)
    nodes = quantized_nodes(probe.q_model)
    kept: tuple[str, ...] = ()
    if activation := activation_only(probe.q_model, nodes):
        # one item scored: only the graph the backend wrote is read
        told = attempt(activation, "activations-float", "onnx", twin, items=1)
        kept = kept_in_int8(probe.q_model, told.path, activation)
    ranked = tuple(n for n in nodes if n not in kept)
    probe.follow(kept, ranked)
    return probe, rank_layers(probe, ranked, steps), kept


def _try(ignored: tuple[str, ...], record: Any) -> dict[str, Any]:
    return {"float_layers": len(ignored), "within_budget": record.accuracy["within_budget"],
            "checks": record.accuracy["checks"]}


class _OutOfTime(Exception):
    """The search's deadline passed before the next point."""


def _search(ranking: tuple[Sensitivity, ...], attempt: Callable[[int], Any],
            tries: list[dict[str, Any]], deadline: float | None = None,
            start: int = 1) -> tuple[Any, str]:
    """Smallest k such that the top-k layers in float meet the budget, searched from ``start``
    (each point tried is appended to ``tries``). Returns the record and why the search
    stopped early ("" when it did not).

    Raises:
        QuantizationError: even every ranked layer in float misses the budget, or the deadline
            passed before any point met it.
    """
    records: dict[int, Any] = {}

    def passes(k: int) -> bool:
        if deadline is not None and time.monotonic() > deadline:
            raise _OutOfTime
        records[k] = attempt(k)
        tries.append(_try(tuple(s.node for s in ranking[:k]), records[k]))
        return bool(records[k].accuracy["within_budget"])

    try:
        return _gallop(ranking, passes, records, start), ""
    except _OutOfTime:
        passing = sorted(k for k, r in records.items() if r.accuracy["within_budget"])
        why = f"the time budget ran out after {len(records)} points of the search"
        if not passing:
            raise QuantizationError(f"{why}, before any met the budget. Give a larger "
                                    "--time-budget, or loosen the budget.") from None
        return records[passing[0]], f"{why}; kept the fewest-float point that met the budget"


def _gallop(ranking: tuple[Sensitivity, ...], passes: Callable[[int], bool],
            records: dict[int, Any], start: int) -> Any:
    """From ``start``, steps of 1, 2, 4, ... down while points pass (0, all INT8, failed
    already) or up while they fail, then bisection between the last failing and the first
    passing count. From 1 this is doubling: 1, 2, 4, 8, ..."""
    n = len(ranking)
    k, step = min(max(start, 1), n), 1
    if passes(k):
        high = k
        while high - step > 0 and passes(high - step):
            high, step = high - step, step * 2
        low = max(high - step, 0)
    else:
        low = k
        while True:
            if low >= n:
                raise QuantizationError(
                    f"The budget is not met even with all {n} ranked nodes in float: "
                    + "; ".join(f"{c['name']} {c['value']:.4f} (limit {c['limit']})"
                                for c in records[n].accuracy["checks"] if not c["passed"])
                    + ". The loss is elsewhere (inputs, other quantized ops) or the budget is "
                    "tighter than INT8 can reach: loosen it, or ship FP32.")
            high = min(low + step, n)
            if passes(high):
                break
            low, step = high, step * 2
    while high - low > 1:
        mid = (low + high) // 2
        if passes(mid):
            high = mid
        else:
            low = mid
    return records[high]


def _with_size_budget(record: Any, size_limit: float) -> Any:
    """``record`` judged by the recipe's own size limit again (the search relaxed it to judge
    accuracy alone): what diagnose writes says what quantize would say of the same model."""
    accuracy = dict(record.accuracy)
    checks = [dict(c, limit=size_limit, passed=c["value"] <= size_limit)
              if c["name"] == "size vs FP32" else c for c in accuracy["checks"]]
    within = all(c["passed"] for c in checks)
    accuracy.update(checks=checks, within_budget=within, over_budget_kept=not within)
    recipe = dict(record.recipe, budget=dict(record.recipe["budget"], max_size_ratio=size_limit))
    return dataclasses.replace(record, accuracy=accuracy, recipe=recipe)


def _write(out_dir: Path, chosen: Any, full: Any, source: Path, data: CalibrationData,
           ranking: tuple[Sensitivity, ...], tries: list[dict[str, Any]], backend: str,
           recipe: Recipe, size_limit: float, seconds: float, stopped: str = "",
           first_point: int = 0, kept: tuple[str, ...] = ()) -> Diagnosis:
    feeds = next(data.batches("evaluation", batch_size=1))[0]
    chosen = _with_size_budget(chosen, size_limit)
    ignored = tuple(n for n in chosen.recipe["ignored_nodes"] if n not in recipe.ignored_nodes)
    diagnosis = Diagnosis(
        backend=backend, precision=recipe.precision.value,
        layers=len(full.int8_activation_layers), baseline=full.accuracy, ranking=ranking,
        ignored_nodes=ignored, final=chosen.accuracy, tries=tuple(tries),
        size_bytes={"fp32": source.stat().st_size, "all_int8": full.size_bytes,
                    "fixed": chosen.size_bytes},
        size_within_budget=chosen.size_bytes <= size_limit * source.stat().st_size,
        latency_ms={"fp32": _latency_ms(source, feeds), "all_int8": _latency_ms(full.path, feeds),
                    "fixed": _latency_ms(chosen.path, feeds)},
        seconds=round(seconds, 1), stopped_early=stopped, first_point=first_point,
        kept_in_int8=kept)
    with staged(out_dir, error=QuantizationError) as stage:
        for item in chosen.path.parent.iterdir():
            shutil.copy2(item, stage / item.name)
        write_json_atomic(stage / RECORD_NAME, dataclasses.replace(
            chosen, path=out_dir / chosen.path.name).to_dict())
        write_json_atomic(stage / DIAGNOSIS_NAME, diagnosis.to_dict())
    return diagnosis

