"""ONNX Runtime backend: static INT8 (QDQ), W4A8 (MatMulNBits, int8 activation kernels) and FP16.

Static INT8 follows the target's format (TARGETS.md): U8S8 with 7-bit weights on AVX2 without
VNNI, whose ``vpmaddubsw`` saturates at full 8-bit weights (depthwise convolutions, whose
kernel does not saturate, keep 8: see ``_depthwise``; an image's first layer stays float);
U8S8 with 8-bit weights on x86 VNNI (``vpdpbusd`` is u8 x s8 into int32; ONNX Runtime on x86
leaves S8S8 QDQ as float MatMuls); S8S8 on ARM (``sdot``). Measured on EfficientNet-Lite0 on
an AVX2 host (800 ImageNet images): S8S8 agreed with FP32 on 87 % of top-1 classes, U8S8 with
7-bit weights on 96 %; on a Zen 4 (VNNI, 1 thread) U8S8 ran 2.25x FP32 and S8S8 1.28x; MiniLM
1.79x and 0.51x.
"""

from __future__ import annotations

import contextlib
import io
import logging
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from frugalml.errors import QuantizationError, require
from frugalml.export.model_info import CONVOLUTIONAL
from frugalml.quantize._calibration import calibration_feeds
from frugalml.quantize._depthwise import full_range_depthwise
from frugalml.quantize._dynamic import quantize_dynamic_int8
from frugalml.quantize._graph import (
    constants_as_initializers,
    opset,
    require_linear_layers,
    summarize,
    under_one_group,
    untie_transposed_matmuls,
)
from frugalml.quantize._protocol import CalibrationData
from frugalml.quantize._ranges import items_behind, ranges_file, remember
from frugalml.quantize._weight_only import int8_embeddings, weight_only_int8
from frugalml.quantize.recipe import CalibrationMethod, Precision, Recipe
from frugalml.quantize.records import QuantizedModel
from frugalml.runtime.formats import is_onnx
from frugalml.targets.profiles import QuantFormat, Target

_METHODS = {
    CalibrationMethod.MINMAX: "MinMax",
    CalibrationMethod.PERCENTILE: "Percentile",
    CalibrationMethod.ENTROPY: "Entropy",
}
# (activation type, weight type, reduce_range) per target INT8 format
_FORMATS = {
    QuantFormat.U8S8_REDUCED: ("QUInt8", "QInt8", True),
    QuantFormat.S8S8: ("QInt8", "QInt8", False),
    QuantFormat.U8S8: ("QUInt8", "QInt8", False),
}

# ONNX Runtime merges calibration ranges every this many items instead of keeping them all.
MERGE_EVERY = 16


class StreamingReader:
    """Feeds calibration items one at a time, at their own length (as they arrive on device).

    NOTE: ONNX Runtime (1.32) raises "No data is collected" when the item count is an exact
    multiple of ``CalibMaxIntermediateOutputs``: the last chunk is merged and cleared before
    its final check. The reader then repeats the last item once, which leaves min/max ranges
    unchanged.
    """

    def __init__(self, items: Iterator[dict[str, Any]]) -> None:
        self._items = items
        self.count = 0  # items read (the repeated last one not counted)
        self._last: dict[str, Any] | None = None
        self._padded = False

    def get_next(self) -> dict[str, Any] | None:
        item = next(self._items, None)
        if item is not None:
            self.count += 1
            self._last = item
            return item
        if self.count and self.count % MERGE_EVERY == 0 and not self._padded:
            self._padded = True
            return self._last
        if not self.count:
            raise QuantizationError("The calibration part is empty: static quantization needs "
                                    "real inputs. Give a larger data set or a smaller split.")
        return None

    def rewind(self) -> None:  # pragma: no cover - ORT only calls this for some calibrators
        raise QuantizationError("Calibration data is streamed once; rewinding is not supported.")


def _plan(model: Any, recipe: Recipe, target: Target, structure: str
          ) -> tuple[list[str] | None, list[str], dict[str, Any]]:
    """Choose op types, float nodes and weight-only nodes for static INT8.

    Convolutional models (``structure``, decided once in the model's record): every operator
    ONNX Runtime can quantize, so Clip/ReLU and residual Adds stay in the integer chain.
    Measured on EfficientNet-Lite0: quantizing only Conv/Gemm left each ReLU6 reading a range
    set by the pre-activation outliers, and top-1 agreement with FP32 fell from 96 % to 82 %.
    Others (attention, plain): MatMul and Gemm only; attention (activation x activation)
    MatMuls and the linear layers after ``float_activations_after`` ops keep float activations.
    At 7-bit weights (x86-avx2) an image's first layer stays float (see :func:`_first_layers`).

    Returns:
        (op types or None for all, nodes excluded from activation quantization,
         weight-only targets: node name -> (weight input index, axis))
    """
    inits = {i.name for i in model.graph.initializer}
    producer = {out: node.op_type for node in model.graph.node for out in node.output}
    excluded, weight_only = list(recipe.float_nodes), {}
    if target.int8_format is QuantFormat.U8S8_REDUCED:
        excluded += [n for n in _first_layers(model) if n not in excluded]
    is_cnn = structure == CONVOLUTIONAL
    op_types = list(recipe.op_types) or (None if is_cnn else ["MatMul", "Gemm"])
    for node in model.graph.node:
        if node.name in recipe.float_nodes or is_cnn:
            continue
        if node.op_type == "MatMul":
            if node.input[1] not in inits:  # activation x activation (attention): stays float
                excluded.append(node.name)
            elif producer.get(node.input[0]) in recipe.float_activations_after:
                excluded.append(node.name)
                weight_only[node.name] = (1, 1)  # W[K, N]: one scale per output column
        elif node.op_type == "Gather" and recipe.quantize_embeddings and node.input[0] in inits:
            weight_only[node.name] = (0, 0)  # table[V, D]: one scale per row
    return op_types, excluded, weight_only


def _quantize_static(pre: Path, qdq: Path, data: CalibrationData, recipe: Recipe,
                     target: Target, op_types: list[str] | None, excluded: list[str]) -> int:
    """Calibrate on the calibration part (once per graph, data and operator set in this
    process: :mod:`._ranges`) and write the QDQ model; the calibration items the ranges came
    from.

    Raises:
        QuantizationError: ONNX Runtime fails during calibration or quantization.
    """
    import onnxruntime
    from onnxruntime import quantization as q

    act, weight, reduce_range = _FORMATS[target.int8_format]
    ranges = ranges_file(pre, sorted(op_types or ()), recipe.calibration_method.value,
                         recipe.calibration_items, target.int8_format.value, data.fingerprint,
                         MERGE_EVERY, onnxruntime.__version__)
    calibrated = items_behind(ranges)
    reader = StreamingReader(calibration_feeds(data, recipe.calibration_items))
    # Removable activations (ReLU, Clip) stay in the file: ONNX Runtime still drops them when
    # the session loads, and `frugal diagnose` can then put one layer back in float exactly.
    extra: dict[str, Any] = {"CalibMaxIntermediateOutputs": MERGE_EVERY,
                             "QDQKeepRemovableActivations": True}
    if op_types is not None and "Conv" not in op_types:
        # Float MatMul outputs fuse into MatMulIntegerToFloat: one rounding less.
        extra["OpTypesToExcludeOutputQuantization"] = ["MatMul", "Gemm"]
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            q.quantize_static(
                str(pre), str(qdq), reader, quant_format=q.QuantFormat.QDQ,
                per_channel=recipe.per_channel, activation_type=getattr(q.QuantType, act),
                weight_type=getattr(q.QuantType, weight), reduce_range=reduce_range,
                op_types_to_quantize=op_types, nodes_to_exclude=excluded,
                calibrate_method=getattr(q.CalibrationMethod, _METHODS[recipe.calibration_method]),
                # Bounded memory: ORT keeps every batch's calibration outputs until the end
                # unless told to merge every N batches; min/max merge exactly.
                extra_options=extra, calibration_cache_path=ranges,
            )
    except QuantizationError:
        raise
    except Exception as e:  # ORT raises untyped errors from deep inside calibration
        raise QuantizationError(f"ONNX Runtime static quantization failed: {e}. Check that the "
                                "calibration data matches the model's inputs.") from e
    if calibrated is None:
        calibrated = reader.count
        remember(ranges, calibrated)
    return calibrated


def _first_layers(model: Any) -> list[str]:
    """Convs that read a graph input of at most 4 channels per group: an image's first layer.

    NOTE: at 7-bit weights such a layer (27 weights per 3x3 RGB filter) loses the most, and in
    float it costs nothing measurable. EfficientNet-Lite0 for x86-avx2 on an AMD EPYC family 25
    model 1 (800 ImageNet images, 1 thread): top-1 drop 0.875 -> 0.5 points with its stem in
    float, 1.49x -> 1.51x FP32.
    """
    inputs = {i.name for i in model.graph.input}
    weights = {i.name: tuple(i.dims) for i in model.graph.initializer}
    return [n.name for n in model.graph.node
            if n.op_type == "Conv" and n.input[0] in inputs
            and len(weights.get(n.input[1], ())) == 4 and weights[n.input[1]][1] <= 4]


def _widened(quantized: Any, prepared: Any, target: Target) -> Any:
    """``quantized`` with full 8-bit depthwise weights where the format keeps the others at 7
    (see :mod:`._depthwise`)."""
    if target.int8_format is QuantFormat.U8S8_REDUCED:
        full_range_depthwise(quantized, prepared)
    return quantized


def _int8_weight_layers(model: Any, recipe: Recipe) -> tuple[str, ...]:
    """Constant-weight MatMuls that read from, or feed (through a bias Add), an op type in
    ``recipe.float_activations_after``: the feed-forward block around GELU in transformers.

    NOTE: measured on all-MiniLM-L6-v2 (group 32, asymmetric, 192 texts): every MatMul in 4 bits
    gave a mean embedding cosine of 0.971; the 12 feed-forward MatMuls kept at 8-bit weights
    0.985, and the file stays under a quarter of FP32. The int8 activations cost nothing
    measurable (0.9709 vs 0.9705 without them): the 4-bit weights are the error.
    """
    inits = {i.name for i in model.graph.initializer}
    producer = {out: n.op_type for n in model.graph.node for out in n.output}
    readers: dict[str, list[Any]] = {}
    for node in model.graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    around = set(recipe.float_activations_after)

    def feeds_into(name: str) -> set[str]:
        direct = readers.get(name, [])
        through_add = [r for n in direct if n.op_type == "Add"
                       for r in readers.get(n.output[0], [])]
        return {n.op_type for n in direct + through_add}

    return tuple(n.name for n in model.graph.node
                 if n.op_type == "MatMul" and n.input[1] in inits
                 and n.name not in recipe.float_nodes
                 and (producer.get(n.input[0]) in around or feeds_into(n.output[0]) & around))


def _int4_matmuls(model: Any, recipe: Recipe, int8_weights: set[str]) -> Any:
    """MatMul weights to 4-bit ``MatMulNBits`` with int8 activation kernels, except the
    ``int8_weights`` layers (see :func:`_int8_weight_layers`).

    NOTE: ``accuracy_level=4`` is what makes this W4A8: without it ONNX Runtime runs the
    4-bit weights through a slower float path (TARGETS.md).
    """
    from onnxruntime.quantization import matmul_nbits_quantizer as nbits

    if recipe.weight_methods:
        # NOTE: ONNX Runtime 1.32's GPTQ (its vendored neural-compressor code) took 245 s on
        # all-MiniLM-L6-v2 and left a mean embedding cosine of 0.66: not offered here.
        raise QuantizationError(
            f"The onnxruntime backend chooses 4-bit weights by rounding only; for "
            f"{', '.join(recipe.weight_methods)} use --backend nncf.")
    quantizer = nbits.MatMulNBitsQuantizer(
        model, bits=4, block_size=recipe.group_size, is_symmetric=recipe.weight_symmetric,
        accuracy_level=4,
        nodes_to_exclude=[*recipe.float_nodes, *int8_weights,
                          *under_one_group(model, recipe.group_size)])
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            quantizer.process()
    except Exception as e:  # ORT's weight quantizers raise untyped errors
        raise QuantizationError(f"ONNX Runtime 4-bit weight quantization failed: {e}") from e
    return quantizer.model.model


def _activations(recipe: Recipe, model: Any) -> str:
    if recipe.precision is Precision.INT8:
        return "dynamic int8 (per call)" if recipe.dynamic_activations else "static int8"
    if recipe.precision is not Precision.W4A8:
        return "float"
    static = any(n.op_type == "QuantizeLinear" for n in model.graph.node)
    return ("dynamic int8 in MatMulNBits (accuracy_level 4)"
            + ("; static int8 for Conv/Gemm" if static else ""))


class OnnxRuntimeQuantizer:
    """INT8, W4A8 and FP16 ONNX models for ONNX Runtime; FP32 passes through."""

    name = "onnxruntime"
    formats = ("onnx",)

    def quantize(
        self, model: Path, data: CalibrationData, recipe: Recipe, target: Target, out: Path,
        *, source_digest: str, structure: str,
    ) -> QuantizedModel:
        """Quantize ``model`` as ``recipe`` says, for ``target``, and write ``out`` (.onnx);
        ``structure`` (the model record's) chooses static INT8's operator set.

        Raises:
            QuantizationError: an output format this backend cannot write, a model with no
                quantizable layers, or ONNX Runtime fails.
        """
        require("onnxruntime", extra="runtime")
        require("onnx", extra="toolchain")
        import onnx

        if not is_onnx(out):
            raise QuantizationError(f"The onnxruntime backend writes ONNX, not {out.suffix}; use "
                                    "--backend nncf for OpenVINO IR.")
        if recipe.precision is Precision.BF16:
            raise QuantizationError("ONNX Runtime has no bf16 path for FP32 models on x86 "
                                    "(onnxruntime#19937); bf16 runs through OpenVINO: use "
                                    "--backend nncf --format openvino.")
        logging.getLogger("onnxruntime").setLevel(logging.ERROR)
        start = time.perf_counter()
        with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
            result, calibrated = self._write(model, data, recipe, target, Path(tmp), structure)
            onnx.save(result, str(out))
        return QuantizedModel(
            path=out, backend=self.name, precision=recipe.precision.value, format="onnx",
            int8_format=target.int8_format.value, source_digest=source_digest,
            calibration_fingerprint=data.fingerprint, recipe=recipe.to_dict(),
            seconds=round(time.perf_counter() - start, 2), size_bytes=out.stat().st_size,
            activations=_activations(recipe, result), calibration_items_used=calibrated,
            **summarize(result),
        )

    def _write(self, model: Path, data: CalibrationData, recipe: Recipe, target: Target,
               tmp: Path, structure: str) -> tuple[Any, int]:
        """The quantized graph, and the calibration items its static ranges came from."""
        import onnx
        from onnxruntime.quantization.shape_inference import quant_pre_process

        if recipe.precision is Precision.FP32:
            shutil.copyfile(model, tmp / "copy.onnx")
            return onnx.load(str(tmp / "copy.onnx")), 0
        if recipe.precision is Precision.FP16:
            from onnxruntime.transformers.float16 import convert_float_to_float16

            return convert_float_to_float16(onnx.load(str(model)), keep_io_types=True,
                                            node_block_list=list(recipe.float_nodes)), 0
        pre = tmp / "pre.onnx"
        # NOTE: symbolic shape inference fails on dynamo-exported graphs; ONNX's is enough.
        # Graph optimization is skipped so node names stay the source model's (it renamed a
        # fused MatMul+Add "fc1/MatMulAddFusion"): exclusion lists must name the same nodes in
        # both backends. Exports are already optimized (BN folded, onnxslim).
        quant_pre_process(str(model), str(pre), skip_symbolic_shape=True,
                          skip_optimization=True)
        prepared = onnx.load(str(pre))
        if constants_as_initializers(prepared):
            onnx.save(prepared, str(pre))
        require_linear_layers(prepared, model)
        if opset(prepared) < 13:
            # Per-channel DequantizeLinear (axis) exists from opset 13; ONNX Runtime's quantizer
            # writes it into older graphs anyway, which then fail to load.
            prepared = onnx.version_converter.convert_version(prepared, 13)
            onnx.save(prepared, str(pre))
        if recipe.precision is Precision.INT8 and recipe.dynamic_activations:
            quantized = quantize_dynamic_int8(pre, tmp / "dynamic.onnx", recipe, target, data)
            int8_embeddings(quantized, recipe)
            return quantized, 0
        if recipe.precision is Precision.INT8:
            op_types, excluded, weight_only = _plan(prepared, recipe, target, structure)
            calibrated = _quantize_static(pre, tmp / "qdq.onnx", data, recipe, target, op_types,
                                          excluded)
            quantized = _widened(onnx.load(str(tmp / "qdq.onnx")), prepared, target)
            weight_only_int8(quantized, weight_only)
            return quantized, calibrated
        # W4A8: Conv/Gemm get static INT8 first; every constant-weight MatMul then gets 4 bits.
        calibrated = 0
        if any(n.op_type in ("Conv", "Gemm") for n in prepared.graph.node):
            calibrated = _quantize_static(pre, tmp / "qdq.onnx", data, recipe, target,
                                          ["Conv", "Gemm"], list(recipe.float_nodes))
            prepared = _widened(onnx.load(str(tmp / "qdq.onnx")), prepared, target)
        if opset(prepared) < 21:
            raise QuantizationError(f"{model} has opset {opset(prepared)}; 4-bit weights need "
                                    "opset 21. Export again with --opset 21.")
        # A tied output layer gets its own weight, kept at 8 bits: in 4 bits it cost SmolLM2
        # ~8 perplexity points (STACK.md), and at 8 it is a quarter of its FP32 read.
        untied = untie_transposed_matmuls(prepared)
        int8 = (*_int8_weight_layers(prepared, recipe), *untied)
        quantized = _int4_matmuls(prepared, recipe, set(int8))
        weight_only_int8(quantized, {n: (1, 1) for n in int8})  # W[K, N]: per output column
        int8_embeddings(quantized, recipe)
        return quantized, calibrated

