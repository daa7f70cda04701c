"""`frugal diagnose`: find the layers that break an INT8 model's accuracy, and keep the fewest
of them in float that bring it within budget.

1. Quantize everything and score it (if it meets the budget there is nothing to fix).
2. Sensitivity: put one layer at a time back in float (`_dequantize`, no re-quantization) and
   measure how much of the output cosine to FP32 it recovers on a few evaluation items.
3. Predict where to start: when only cosine checks failed, bisect on the same cheap probe
   (the top k ranked layers back in float) for the fewest that reach the cosine limit.
4. Search: keep the top k ranked layers in float, quantizing again through the backend each
   time (``nodes_to_exclude`` / ``IgnoredScope``) and scoring against the whole budget: from
   the predicted k (else 1), step away by 1, 2, 4, ... until the verdict flips, then bisect
   to the smallest passing count. A point costs a quantization and a scoring (~12 s on
   MiniLM on 2 cores), a probe ~1 s. The probe is optimistic where the backend cannot take
   a node's inputs out of int8 (ONNX Runtime keeps the Q/DQ pairs before a residual Add it
   was told to exclude): on the deploy test's MiniLM it predicted 8 nodes where 17 were
   needed, and the search tried 8 points instead of doubling's 10.

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
from frugalml.quantize._dequantize import dequantize_layers
from frugalml.quantize._graph import LINEAR_OPS, summarize
from frugalml.quantize._protocol import CalibrationData
from frugalml.quantize.accuracy import batches, open_model, task_of
from frugalml.quantize.api import RECORD_NAME, model_file, quantize
from frugalml.quantize.parts import OutputParts
from frugalml.quantize.recipe import Precision, Recipe, get_recipe
from frugalml.quantize.scoring import COSINE_CHECK
from frugalml.runtime.formats import is_onnx

DIAGNOSIS_NAME = "diagnosis.json"


@dataclasses.dataclass(frozen=True, slots=True)
class Sensitivity:
    """One layer's share of the error: output cosine to FP32 with only it in float."""

    node: str
    cosine_alone_in_float: float
    recovered: float


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

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return dataclasses.asdict(self)


def _probe(model: Any, feeds: list[dict[str, np.ndarray]], output: str) -> list[np.ndarray]:
    """One output of an in-memory ONNX model on the probe batches."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # a bypassed pair leaves its scale unused: not news
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    return [session.run([output], f)[0] for f in feeds]


def _worst_part(ref: list[np.ndarray], cand: list[np.ndarray], output: str) -> float:
    """Mean cosine to FP32 of the output's worst part: the whole output, or the channel group
    of another scale whose loss a whole-tensor cosine hides (:mod:`~frugalml.quantize.parts`).
    Language-model logits are compared per token. An output of one value per item (a
    detector's probability) scores 1 - its mean absolute error: a cosine over one number is
    always 1, and ranked nothing."""
    if all(r.size == len(r) for r in ref):
        return 1.0 - float(np.mean([np.abs(r.astype(np.float64) - c).mean()
                                    for r, c in zip(ref, cand, strict=True)]))
    parts = OutputParts(output)
    for r, c in zip(ref, cand, strict=True):
        if r.ndim == 3 and r.shape[-1] > 1000:  # logits [N, T, V]: one row per token
            r, c = r.reshape(-1, r.shape[-1]), c.reshape(-1, c.shape[-1])
        parts.add(r, c)
    return min(p.mean_cosine for p in parts.scores())


# Activation-only operators that pass their input's scale through unchanged: taking one back
# to float cannot change the error.
_SCALE_PRESERVING = ("Relu", "Clip", "MaxPool", "Reshape", "Transpose", "Flatten", "Squeeze",
                     "Unsqueeze", "Identity", "QuantizeLinear", "DequantizeLinear")


def quantized_nodes(model: Any) -> tuple[str, ...]:
    """The INT8 layers and the activation-only nodes (Concat, Add, Resize ...) that read an
    input through a QuantizeLinear/DequantizeLinear pair: every node whose quantization can
    cost accuracy on its own, and that a backend's exclusion list takes out of int8. (A node
    with only its output quantized, a GELU before a MatMul, is the MatMul's input: ranking it
    would rank a node the backend never quantized.)"""
    producer = {out: n for n in model.graph.node for out in n.output}
    quantized_inputs = {n.output[0] for n in model.graph.node if n.op_type == "DequantizeLinear"
                        and producer.get(n.input[0]) is not None
                        and producer[n.input[0]].op_type == "QuantizeLinear"}
    layers = set(summarize(model)["int8_activation_layers"])
    return tuple(n.name for n in model.graph.node if n.name in layers or (
        n.op_type not in LINEAR_OPS and n.op_type not in _SCALE_PRESERVING
        and set(n.input) & quantized_inputs))


class _Probe:
    """One output of the FP32 and the INT8 model on a few evaluation items, and the mean
    cosine of its worst part with chosen nodes put back in float (``_dequantize``, no
    re-quantization): a second on MiniLM, where a quantize-and-score point takes twelve."""

    def __init__(self, quantized: Path, fp32: Path, data: CalibrationData, items: int,
                 task: str | None) -> None:
        import onnx

        self.q_model, self.f_model = onnx.load(str(quantized)), onnx.load(str(fp32))
        reference = open_model(fp32)
        try:
            found_task, self.output = task_of(reference, data, task)
            self.feeds = [f for f, _ in batches(data, items, found_task)]
        finally:
            reference.close()
        self.ref = _probe(self.f_model, self.feeds, self.output)
        self.base = self.cosine(())

    def cosine(self, nodes: tuple[str, ...]) -> float:
        """Worst-part mean cosine to FP32 with ``nodes`` in float."""
        model = dequantize_layers(self.q_model, self.f_model, list(nodes)) if nodes else (
            self.q_model)
        return _worst_part(self.ref, _probe(model, self.feeds, self.output), self.output)


def rank_layers(probe: _Probe, steps: Steps | None = None) -> tuple[Sensitivity, ...]:
    """Rank the INT8 layers and activation-only Q/DQ nodes of the probed model by how much of
    the worst output part's cosine to FP32 each recovers when it alone is back in float."""
    steps = steps or Steps(quiet=True)
    nodes = quantized_nodes(probe.q_model)
    found = []
    for name in steps.track(nodes, total=len(nodes), title="one node at a time in float"):
        cos = probe.cosine((name,))
        found.append(Sensitivity(name, cos, cos - probe.base))
    return tuple(sorted(found, key=lambda s: -s.recovered))


def predicted_start(probe: _Probe, ranking: tuple[Sensitivity, ...],
                    accuracy: dict[str, Any]) -> int:
    """Where the search starts: when every failed check is a cosine limit (what the probe
    measures), the fewest top-ranked nodes whose probe cosine reaches it, by bisection (about
    six probes for 42 nodes; all of them when none does); else 1. The probe sees fewer items
    and no re-quantization, so this is where the search starts, never its answer."""
    failed = [c for c in accuracy["checks"] if not c["passed"]]
    if not ranking or not failed or not all(c["name"].startswith(COSINE_CHECK) for c in failed):
        return 1
    limit = max(c["limit"] for c in failed)
    low, high = 0, len(ranking)
    while high - low > 1:
        mid = (low + high) // 2
        if probe.cosine(tuple(s.node for s in ranking[:mid])) >= limit:
            high = mid
        else:
            low = mid
    return high


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
        def attempt(ignored: tuple[str, ...], dest: Path, fmt: str = output_format,
                    base: Recipe = recipe) -> Any:
            return quantize(model, data, dest, recipe=dataclasses.replace(
                base, ignored_nodes=base.ignored_nodes + ignored), backend=backend,
                target=target, output_format=fmt, eval_items=eval_items,
                allow_over_budget=True, task=task, steps=steps)

        full = first or attempt((), Path(tmp) / "full")
        tries = [_try((), full)]
        ranking: tuple[Sensitivity, ...] = ()
        chosen, stopped, first_point = full, "", 0
        if not full.accuracy["within_budget"]:
            probed = full if is_onnx(full.path) else attempt(
                (), Path(tmp) / "onnx-twin", "onnx", dataclasses.replace(
                    recipe, float_precision="fp32"))  # only OpenVINO computes bf16
            probe = _Probe(probed.path, source, data, probe_items, task)
            ranking = rank_layers(probe, steps)
            first_point = predicted_start(probe, ranking, full.accuracy)
            chosen, stopped = _search(ranking, lambda k: attempt(
                tuple(s.node for s in ranking[:k]), Path(tmp) / f"k{k}"), tries, deadline,
                start=first_point)
        return _write(out_dir, chosen, full, source, data, ranking, tries, backend, recipe,
                      size_limit, time.perf_counter() - start, stopped, first_point)


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
                    f"The budget is not met even with all {n} quantized nodes in float: "
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
           first_point: int = 0) -> Diagnosis:
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
        seconds=round(seconds, 1), stopped_early=stopped, first_point=first_point)
    with staged(out_dir, error=QuantizationError) as stage:
        for item in chosen.path.parent.iterdir():
            shutil.copy2(item, stage / item.name)
        write_json_atomic(stage / RECORD_NAME, dataclasses.replace(
            chosen, path=out_dir / chosen.path.name).to_dict())
        write_json_atomic(stage / DIAGNOSIS_NAME, diagnosis.to_dict())
    return diagnosis

