"""`quantize`: one call from an FP32 model and real data to a scored, quantized model.

The backend writes the model; this module resolves names, checks the data against the model,
scores the result against FP32 on the evaluation part, and refuses a result over budget
unless told to keep it (then the record says so loudly).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from frugalml.core.atomic import staged
from frugalml.core.progress import Steps
from frugalml.core.records import file_sha256, write_json_atomic
from frugalml.errors import QuantizationError
from frugalml.export.model_info import (
    ModelInfo,
    onnxruntime_operators,
    read_ops,
    recorded,
    recorded_layout,
    structure_of,
)
from frugalml.quantize._calibration import calibration_feeds
from frugalml.quantize._exact_integer import (
    exact_integer_copy,
    has_integer_matmuls,
    integer_kernels_left,
)
from frugalml.quantize._protocol import CalibrationData
from frugalml.quantize._registry import get_quantizer
from frugalml.quantize.accuracy import filled_by_prefill, measure, open_model, size_check, task_of
from frugalml.quantize.range_safety import RangeSafety, analyse, graph_only
from frugalml.quantize.recipe import Precision, Recipe, get_recipe
from frugalml.quantize.records import QuantizedModel
from frugalml.runtime.backends.onnxruntime import OPTIMIZATION_HINT
from frugalml.runtime.capabilities import BF16, FP32, HINT_OF_PRECISION
from frugalml.runtime.formats import is_ir, is_onnx, model_files
from frugalml.runtime.host import describe_capabilities, read_host
from frugalml.runtime.manifest import onnx_dtype
from frugalml.targets import detect, get_target, missing_for

RECORD_NAME = "quantize.json"


def model_file(model: Path | ModelInfo) -> Path:
    """The model file of ``model``: the file itself, or a folder's model.onnx / model.xml.

    Raises:
        QuantizationError: no ONNX or OpenVINO model is there.
    """
    if isinstance(model, ModelInfo):
        return model.path
    model = Path(model)
    if model.is_dir():
        for name in ("model.onnx", "model.xml"):
            if (model / name).is_file():
                return model / name
    elif (is_onnx(model) or is_ir(model)) and model.is_file():
        return model
    raise QuantizationError(f"{model} is not an ONNX (.onnx) or OpenVINO (.xml) model, nor a "
                            "folder holding model.onnx or model.xml (what `frugal export` "
                            "writes).")


def model_bytes(path: Path) -> int:
    """Size on disk of a model file with its weights (.bin beside an .xml, ONNX external data)."""
    return sum(p.stat().st_size for p in model_files(path) if p.is_file())


def signature(path: Path) -> list[tuple[str, str, tuple[Any, ...]]]:
    """(name, numpy dtype, shape) of a model's inputs, read by the runtime that runs it."""
    if is_ir(path):
        import openvino as ov

        model = ov.Core().read_model(str(path))
        return [(i.get_any_name(), i.get_element_type().to_dtype().name,
                 tuple(d.get_length() if d.is_static else "?" for d in i.get_partial_shape()))
                for i in model.inputs]
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    filled = filled_by_prefill(Path(path))  # a decoder's cache: not the data's to give
    return [(i.name, onnx_dtype(i.type), tuple(i.shape)) for i in session.get_inputs()
            if i.name not in filled]


def quantize(model: Path | ModelInfo, data: CalibrationData, out_dir: Path, *,
             recipe: Recipe | str = "int8", backend: str = "onnxruntime",
             target: Any = "auto", output_format: str | None = None, eval_items: int = 500,
             allow_over_budget: bool = False, task: str | None = None,
             steps: Steps | None = None, reference: Path | None = None,
             deadline: float | None = None) -> QuantizedModel:
    """Quantize ``model`` with ``recipe`` through ``backend`` and write ``out_dir``.

    ``model``: a model file or folder, or its :class:`ModelInfo` (inputs, task, structure).
    ``task`` names what the outputs mean (:class:`~frugalml.quantize.accuracy.Task`; None
    infers it), which decides how the result is scored against ``reference`` (default:
    ``model``; a fused graph is scored against its unfused export), up to ``deadline``
    (``time.monotonic()``; the record says after how many items). ``out_dir`` receives
    ``model.onnx`` (or ``model.xml``/``.bin``) and ``quantize.json``, atomically.

    Raises:
        QuantizationError: unknown recipe/backend/format, nothing to quantize, the backend
            failed, or the result is over budget (without ``allow_over_budget``).
        CalibrationError: the data does not fit the model.
        TargetError: unknown target.
    """
    steps, source = steps or Steps(quiet=True), model_file(model)
    recipe = get_recipe(recipe) if isinstance(recipe, str) else recipe
    quantizer = get_quantizer(backend)
    target = detect() if target == "auto" else (
        get_target(target) if isinstance(target, str) else target)
    fmt = output_format or ("openvino" if is_ir(source) else "onnx")
    _check_output(quantizer, recipe, target, fmt, source)
    task, structure = _model_facts(model, data, task)
    with staged(Path(out_dir), error=QuantizationError) as stage:
        out = stage / ("model.xml" if fmt == "openvino" else "model.onnx")
        _carry_sidecars(source, stage)  # the runtime tokenizes a decoder's text with it
        safety = _range_safety(source, data, recipe, steps)
        counted = CountedData(data)
        with steps.step(f"quantize {recipe.precision} with {backend} for {target.name}"):
            record = quantizer.quantize(
                source, counted, _with_float_nodes(recipe, safety), target, out,
                source_digest=file_sha256(source), structure=structure)
        with _scoring(out, target, fmt, recipe) as (scored, hints, how), steps.step(
                f"score against FP32 on up to {eval_items} evaluation items ({how})"):
            report = measure(reference or source, scored, data, recipe.budget, items=eval_items,
                             task=task, candidate_hints=hints, deadline=deadline,
                             layout=recorded_layout(source))
        report = report.with_check(size_check(model_bytes(reference or source),
                                              model_bytes(out), recipe.budget))
        record = dataclasses.replace(record, path=Path(out_dir) / out.name,
                                     recipe=recipe.to_dict(), size_bytes=model_bytes(out),
                                     calibration_items_used=max(
                                         counted.used, record.calibration_items_used),
                                     range_safety=safety.to_dict() if safety else None,
                                     input_roles=_roles(data),  # and the source's facts:
                                     **dataclasses.asdict(recorded(source)), accuracy={
                                         **report.to_dict(), "scored_with": how,
                                         "over_budget_kept": not report.within_budget})
        if not report.within_budget and not allow_over_budget:
            raise QuantizationError(
                f"{recipe.precision} through {backend} is over its budget: "
                + "; ".join(report.failures()) + ". " + _advice(report))
        write_json_atomic(stage / RECORD_NAME, record.to_dict())
    return record


# Files beside a model that the runtime needs to drive it (a decoder's tokenizer): the
# quantized model is driven the same way, so they travel with it. (Facts that are not files,
# such as a decoder's cache layout, travel in the record: export.model_info.Recorded.)
SIDECARS = ("tokenizer.json",)


def _carry_sidecars(source: Path, stage: Path) -> None:
    for name in SIDECARS:
        if (source.parent / name).is_file():
            shutil.copyfile(source.parent / name, stage / name)


def _model_facts(model: Path | ModelInfo, data: CalibrationData, task: str | None
                 ) -> tuple[str | None, str]:
    """The task to score by and the graph's structure, with the data checked against the
    inputs: a ModelInfo's own (its task was read through the model when it was made), or
    read from the file.

    Raises:
        CalibrationError: the data does not fit the inputs.
        QuantizationError: unknown task, or outputs that do not fit it.
    """
    if isinstance(model, ModelInfo):
        _check_inputs(data, model.signature)
        return task or model.task, model.structure
    source = model_file(model)
    _check_fits(source, data, task)
    return task, structure_of(read_ops(source))


def _check_fits(source: Path, data: CalibrationData, task: str | None) -> None:
    """Refuse data that does not fit the model's inputs, and a ``task`` its outputs do not
    fit, before anything long runs.

    Raises:
        CalibrationError: the data does not fit the inputs.
        QuantizationError: unknown task, or outputs that do not fit it.
    """
    _check_inputs(data, signature(source))
    if task is None:
        return
    session = open_model(source)
    try:
        task_of(session, data, task)
    finally:
        session.close()


def _check_inputs(data: CalibrationData, inputs: list[tuple[str, str, tuple[Any, ...]]]
                  ) -> None:
    """Refuse data that does not fit ``inputs`` (a set that can tell).

    Raises:
        CalibrationError: the data does not fit the inputs.
    """
    check = getattr(data, "check_inputs", None)
    if check is not None:
        check(inputs)


def _advice(report: Any) -> str:
    """What to do about the failed checks: size wants fewer float layers, accuracy more."""
    failed = {c.name for c in report.checks if not c.passed}
    if failed == {"size vs FP32"}:
        return ("Loosen --max-size-ratio, or use a smaller precision (w4a8); `frugal "
                "diagnose` keeps layers in float, which makes the model larger, not smaller; "
                "or pass --allow-over-budget to keep it.")
    return ("Run `frugal diagnose` to find the layers to keep in float, loosen the budget, or "
            "pass --allow-over-budget to keep it.")


def _roles(data: CalibrationData) -> dict[str, Any] | None:
    """The input roles of stream data (they go into every bundle of the model); else None."""
    roles = getattr(data, "roles", None)
    return roles.to_dict() if roles else None


class CountedData:
    """The calibration data as a backend reads it, counting the calibration items it takes
    (the record says how many were used, not how many the recipe asked for)."""

    def __init__(self, data: CalibrationData) -> None:
        self._data = data
        self.used = 0

    @property
    def fingerprint(self) -> str:
        return self._data.fingerprint

    def batches(self, part: str, **options: Any
                ) -> Iterator[tuple[dict[str, np.ndarray], np.ndarray]]:
        seen = 0
        for feeds, labels in self._data.batches(part, **options):
            if part == "calibration":
                seen += len(labels)
                self.used = max(self.used, seen)  # NNCF reads the part once per pass
            yield feeds, labels

    def __getattr__(self, name: str) -> Any:
        return getattr(self._data, name)


def _range_safety(source: Path, data: CalibrationData, recipe: Recipe, steps: Steps
                  ) -> RangeSafety | None:
    """Which nodes range safety keeps in float (None: off, or nothing static to quantize)."""
    if not recipe.range_safe or recipe.precision not in (Precision.INT8, Precision.W4A8):
        return None
    if recipe.dynamic_activations:
        return None  # no calibrated scale to share: each call measures its own range
    if not is_onnx(source):
        return None  # IR sources: NNCF places its quantizers itself (noted in ARCHITECTURE)
    import onnx

    model = onnx.load(str(source))
    if recipe.precision is Precision.W4A8 and not any(
            n.op_type in ("Conv", "Gemm") for n in model.graph.node):
        # Every backend's W4A8 quantizes MatMul activations per call (static INT8 is for
        # Conv/Gemm): no Concat shares a calibrated scale, so no FP32 ranges are read (on
        # SmolLM2 that pass took about a minute per candidate).
        return graph_only(model)
    with steps.step("range safety: which nodes keep float (graph rules, FP32 ranges)"):
        safety = analyse(model, calibration_feeds(data, min(recipe.calibration_items,
                                                            RANGE_ITEMS)))
    for head in safety.decision_heads:
        steps.note(f"range safety: {head} kept in float (it makes a one-value decision output)")
    if safety.log_inputs:
        steps.note(f"range safety: {len(safety.log_inputs)} nodes before a Log kept in float "
                   "(one INT8 scale would round its quiet end to zero)")
    for m in safety.mixed_ranges:
        steps.note(f"range safety: {m['node']} kept in float (its inputs' ranges differ "
                   f"{m['ratio']}x)")
    return safety


# Calibration items read for range safety's FP32 ranges (min/max settle quickly).
RANGE_ITEMS = 64


def _with_float_nodes(recipe: Recipe, safety: RangeSafety | None) -> Recipe:
    """The recipe the backend follows: the user's, plus the nodes range safety keeps float."""
    if safety is None:
        return recipe
    return dataclasses.replace(recipe, range_safety_nodes=safety.nodes)


def _check_output(quantizer: Any, recipe: Recipe, target: Any, fmt: str, source: Path
                  ) -> None:
    """Refuse a format the backend cannot write or the source cannot be written as, a float
    precision the target does not compute natively, or one this host cannot score: OpenVINO
    ignores or emulates a bf16 hint on a CPU without bf16 arithmetic, so its scores would be
    FP32's, silently.

    Raises:
        QuantizationError: naming what is missing and what to do.
    """
    if fmt not in getattr(quantizer, "formats", ("onnx",)):
        raise QuantizationError(f"The {quantizer.name} backend cannot write {fmt}; it writes "
                                f"{', '.join(quantizer.formats)}.")
    _check_openvino_reads(source, fmt)
    if not recipe.computes_bf16:
        return
    if fmt != "openvino":
        raise QuantizationError("bf16 is computed by OpenVINO from an IR; pass --format "
                                "openvino (ONNX Runtime has no bf16 path for FP32 models).")
    if not target.capabilities.bf16:
        raise QuantizationError(
            f"Target {target.name} does not guarantee native bf16 ({target.description}); "
            "pick a target that requires avx512_bf16 or amx_bf16 (x86-amx, x86-avx512-bf16).")
    host = read_host()
    why = host.capabilities.missing_for("bf16")
    if why:
        raise QuantizationError(
            f"bf16 cannot be scored on this host: {why} ({describe_capabilities(host.to_dict())})."
            " Score it on a host of the target's class.")


def _check_openvino_reads(source: Path, fmt: str) -> None:
    """Refuse an OpenVINO IR from a graph of ONNX Runtime's own operators before any work: NNCF
    failed on it after loading (a decoder's fused export), with advice about the data.

    Raises:
        QuantizationError: naming the operators and the ONNX output to ask for instead.
    """
    theirs = onnxruntime_operators(source) if fmt == "openvino" else ()
    if theirs:
        raise QuantizationError(
            f"{source.name} holds ONNX Runtime's own operators ({', '.join(theirs[:4])}), "
            "which OpenVINO does not run: an OpenVINO IR cannot be written from it (a "
            "decoder's KV-cache export is fused for ONNX Runtime). Write ONNX instead "
            "(--format onnx; in deploy, a candidate that writes ONNX, such as w4a8-awq for a "
            "decoder).")


def _scoring_for(target: Any, fmt: str, bf16: bool = False) -> tuple[dict[str, str], str]:
    """How to run the quantized model when scoring it: with this CPU's fused kernels when
    ``target`` is this CPU, else ONNX Runtime's unfused reference, which the target's exact
    integer kernels match (x86 AVX2 kernels saturate on S8S8 weights meant for ARM or VNNI,
    which would misstate the target's accuracy). An OpenVINO IR is scored at the float
    precision its bundle runs at on a CPU (``bf16`` for a recipe that computes in it, else
    f32; as ``targets.bundle.assemble_ir`` records it)."""
    if fmt == "openvino":
        hint = HINT_OF_PRECISION[BF16 if bf16 else FP32]
        return {"INFERENCE_PRECISION_HINT": hint}, f"OpenVINO at {hint} on this host"
    if not missing_for(target, read_host()):
        return {}, "this host's kernels"
    return ({OPTIMIZATION_HINT: "DISABLE_ALL"},
            f"unfused reference: {target.name} is not this host's CPU class")


@contextlib.contextmanager
def _scoring(out: Path, target: Any, fmt: str, recipe: Recipe
             ) -> Iterator[tuple[Path, dict[str, str], str]]:
    """The file to score, its backend hints and how it is scored (see :func:`_scoring_for`):
    ``out`` itself, or for a model scored off its CPU class that holds MatMulInteger, a copy
    beside it whose integer products are exact (see :mod:`._exact_integer`), removed after;
    a copy with no integer kernel left runs with all graph optimizations, as on the target."""
    hints, how = _scoring_for(target, fmt, recipe.computes_bf16)
    if not hints or not is_onnx(out) or not has_integer_matmuls(out):
        yield out, hints, how
        return
    copy = out.with_name(".scoring-exact-integers.onnx")
    try:
        exact_integer_copy(out, copy)
        if integer_kernels_left(copy):
            yield copy, hints, how + "; MatMulInteger computed exactly, as the target's kernels do"
        else:
            yield copy, {}, (f"MatMulInteger computed exactly, as the target's kernels do, the "
                             f"rest with all graph optimizations: {target.name} is not this "
                             "host's CPU class")
    finally:
        copy.unlink(missing_ok=True)


def read_record(out_dir: Path) -> QuantizedModel:
    """The record a previous :func:`quantize` wrote into ``out_dir``.

    Raises:
        QuantizationError: no readable record there.
    """
    try:
        return QuantizedModel.from_dict(json.loads((Path(out_dir) / RECORD_NAME).read_text()))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise QuantizationError(f"{out_dir} holds no readable {RECORD_NAME}: {e}.") from e
