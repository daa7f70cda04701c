"""NNCF backend: INT8 and W4A8 on ONNX models (run in ONNX Runtime) and on OpenVINO models.

The output format follows the output file: ``.onnx`` keeps the ONNX graph, ``.xml`` converts to
OpenVINO first. Measured on EfficientNet-Lite0 on an AVX2 host (800 ImageNet images): with
NNCF's defaults, top-1 agreement with FP32 was 93-94 %; with the overflow fix on every layer
(7-bit weights, what the x86-avx2 target's format says) it was 97-98 %.
"""

from __future__ import annotations

import contextlib
import io
import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from frugalml.errors import QuantizationError, require
from frugalml.export.model_info import ATTENTION, recorded_layout
from frugalml.quantize._calibration import calibration_feeds
from frugalml.quantize._graph import (
    constants_as_initializers,
    opset,
    require_linear_layers,
    summarize,
    under_one_group,
    untie_transposed_matmuls,
)
from frugalml.quantize._nbits import blockwise_to_matmulnbits
from frugalml.quantize._openvino_graph import ov_names, summarize_ov
from frugalml.quantize._protocol import CalibrationData
from frugalml.quantize._weight_only import int8_embeddings, weight_only_int8
from frugalml.quantize.recipe import Precision, Recipe
from frugalml.quantize.records import QuantizedModel
from frugalml.runtime.formats import is_ir, is_onnx, model_files, model_format
from frugalml.runtime.generate import prefill_feeds
from frugalml.targets.profiles import QuantFormat, Target


class _Feeds:
    """Re-iterable calibration feeds: NNCF walks the data once per statistics pass. A KV-cache
    decoder's items are filled as a prefill (positions, an empty cache) by ``fill``."""

    def __init__(self, data: CalibrationData, items: int,
                 fill: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]] | None = None
                 ) -> None:
        self._data, self._items, self._fill = data, items, fill

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        feeds = calibration_feeds(self._data, self._items)
        return feeds if self._fill is None else map(self._fill, feeds)


def _dataset(data: CalibrationData, recipe: Recipe, fill: Any = None) -> Any:
    import nncf

    return nncf.Dataset(_Feeds(data, recipe.calibration_items, fill))


def _prefill(source: Path) -> Any:
    """How a KV-cache decoder's calibration items are completed (None for other models)."""
    layout = recorded_layout(source)
    if layout is None:
        return None
    return lambda feeds: prefill_feeds(layout, feeds["input_ids"], feeds.get("attention_mask"))


def _ignored(recipe: Recipe, names: tuple[str, ...] = ()) -> Any:
    import nncf

    wanted = tuple(recipe.float_nodes) + names
    return nncf.IgnoredScope(names=list(wanted), validate=False) if wanted else None


def _int8(model: Any, data: CalibrationData, recipe: Recipe, target: Target,
          names: tuple[str, ...], structure: str) -> Any:
    import nncf
    from nncf.quantization.advanced_parameters import (
        AdvancedQuantizationParameters,
        AdvancedSmoothQuantParameters,
        OverflowFix,
    )

    overflow = (OverflowFix.ENABLE if target.int8_format is QuantFormat.U8S8_REDUCED
                else OverflowFix.DISABLE)
    alpha = recipe.smooth_quant_alpha
    if recipe.precision is Precision.W4A8:
        # NOTE: NNCF 3.4's SmoothQuant fails on weights compress_weights already made 4-bit
        # ("'NoneType' object has no attribute 'shape'"): off for the activation pass.
        alpha = -1.0
    smooth = ({} if alpha is None else {"smooth_quant_alphas": AdvancedSmoothQuantParameters(
        matmul=alpha, convolution=alpha if alpha < 0 else -1.0)})
    advanced = AdvancedQuantizationParameters(
        overflow_fix=overflow, disable_bias_correction=not recipe.bias_correction, **smooth)
    return nncf.quantize(
        model, _dataset(data, recipe), subset_size=recipe.calibration_items,
        model_type=nncf.ModelType.TRANSFORMER if structure == ATTENTION else None,
        ignored_scope=_ignored(recipe, names), advanced_parameters=advanced)


def _int4_weights(model: Any, data: CalibrationData, recipe: Recipe, names: tuple[str, ...],
                  *, all_layers: bool = False, fill: Any = None) -> Any:
    import nncf
    from nncf.quantization.advanced_parameters import (
        AdvancedCompressionParameters,
        GroupSizeFallbackMode,
    )

    aware = set(recipe.weight_methods)
    mode = (nncf.CompressWeightsMode.INT4_SYM if recipe.weight_symmetric
            else nncf.CompressWeightsMode.INT4_ASYM)
    return nncf.compress_weights(
        model, mode=mode, group_size=recipe.group_size, ratio=1.0,
        dataset=_dataset(data, recipe, fill) if aware else None, all_layers=all_layers,
        subset_size=min(recipe.calibration_items, 128),
        # NNCF's ONNX backend refuses False for methods it lacks (GPTQ): None means "off".
        awq=("awq" in aware) or None, scale_estimation=("scale_estimation" in aware) or None,
        gptq=("gptq" in aware) or None,
        ignored_scope=_ignored(recipe, names),
        # A layer whose input width the group does not divide gets the largest power-of-two
        # group that does (ONNX Runtime pads instead).
        advanced_parameters=AdvancedCompressionParameters(
            group_size_fallback_mode=GroupSizeFallbackMode.ADJUST))


def _dynamic_activations(model: Any) -> str:
    """Ask OpenVINO's CPU plugin to quantize the 4-bit layers' activations at run time.

    Static per-tensor int8 activations (a FakeQuantize pass after compress_weights) cost
    SmolLM2-135M +125 % perplexity (+25 % even with the FFN down-projections in float, on
    tiny-shakespeare); per-group dynamic int8, like ONNX Runtime's MatMulNBits accuracy level 4,
    is what OpenVINO runs 4-bit transformers with. It is stored in the IR's runtime options, so
    it travels with the model.
    """
    model.set_rt_info(str(_DYNAMIC_GROUP), ["runtime_options", "DYNAMIC_QUANTIZATION_GROUP_SIZE"])
    return (f"dynamic int8 in OpenVINO's CPU plugin (group {_DYNAMIC_GROUP}) where the CPU has "
            "int8 kernels for it (none on an AVX2 host without VNNI: float there, measured)")


_DYNAMIC_GROUP = 32


def _w4a8_onnx(graph: Any, source: Path, data: CalibrationData, recipe: Recipe) -> Any:
    """4-bit weights chosen by NNCF (with AWQ and scale estimation when the recipe asks), run
    by ONNX Runtime as ``MatMulNBits`` with int8 activations (accuracy level 4).

    Only NNCF's weight compression runs: its activation pass after ``compress_weights`` puts
    static int8 Q/DQ over the dequantized 4-bit weights (int4 -> float -> int8), which no
    runtime fuses. As in the onnxruntime backend, a tied output layer gets its own weight at 8
    bits, embedding tables int8 rows, and MatMuls shorter than a block stay float. Measured on
    SmolLM2-135M's KV graph (tiny-shakespeare, 32 calibration windows, 40 scored): AWQ + scale
    estimation +12.9 % perplexity, 65 s; rounding alone (onnxruntime backend) +18.4 %.
    """
    if opset(graph) < 21:
        raise QuantizationError(f"{source} has opset {opset(graph)}; NNCF writes 4-bit weights "
                                "for ONNX at opset 21. Export again with --opset 21.")
    conv = [n.name for n in graph.graph.node if n.op_type in ("Conv", "Gemm")]
    if conv:
        raise QuantizationError(
            f"NNCF W4A8 on ONNX covers MatMul layers; {source.name} has Conv/Gemm ({conv[0]}, "
            "...). Use --backend onnxruntime (static INT8 for those) or --format openvino.")
    untied = untie_transposed_matmuls(graph)
    kept = (*untied, *under_one_group(graph, recipe.group_size),
            *(n.name for n in graph.graph.node if n.op_type == "Gather"))
    graph = _int4_weights(graph, data, recipe, kept, all_layers=True, fill=_prefill(source))
    if not blockwise_to_matmulnbits(graph):
        raise QuantizationError(f"NNCF left no MatMul of {source.name} in 4 bits; nothing to "
                                "run as W4A8 (its layers may all be in ignored_nodes).")
    weight_only_int8(graph, {n: (1, 1) for n in untied})  # W[K, N]: per output column
    int8_embeddings(graph, recipe)
    return graph


class NncfQuantizer:
    """INT8 and W4A8 through NNCF; FP16, BF16 and FP32 OpenVINO IR; FP32 ONNX passes through."""

    name = "nncf"
    formats = ("onnx", "openvino")

    def quantize(
        self, model: Path, data: CalibrationData, recipe: Recipe, target: Target, out: Path,
        *, source_digest: str, structure: str,
    ) -> QuantizedModel:
        """Quantize ``model`` (.onnx or .xml) into ``out`` (.onnx or .xml); an ``attention``
        ``structure`` (the model record's) gets NNCF's transformer mode.

        Raises:
            QuantizationError: an impossible format conversion, a model with no quantizable
                layers, an ONNX model below opset 21 for 4-bit weights, or NNCF fails.
        """
        require("nncf", extra="toolchain")
        if recipe.dynamic_activations:
            raise QuantizationError("NNCF has no dynamic INT8 (activations quantized per call); "
                                    "use --backend onnxruntime for int8-dynamic.")
        fmt = model_format(out) if is_onnx(out) or is_ir(out) else None
        if fmt is None or (fmt == "onnx" and not is_onnx(model)):
            raise QuantizationError(f"The nncf backend writes .onnx from ONNX or .xml from "
                                    f"ONNX/OpenVINO; cannot make {out.name} from {model.name}.")
        logging.getLogger("nncf").setLevel(logging.ERROR)
        start = time.perf_counter()
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                layers = self._write(model, data, recipe, target, out, fmt, structure)
        except QuantizationError:
            raise
        except Exception as e:  # NNCF raises untyped errors from inside its algorithms
            raise QuantizationError(f"NNCF {recipe.precision} quantization failed: {e}. Check "
                                    "that the calibration data matches the model's inputs.") from e
        size = sum(p.stat().st_size for p in model_files(out) if p.exists())
        return QuantizedModel(
            path=out, backend=self.name, precision=recipe.precision.value, format=fmt,
            int8_format=target.int8_format.value, source_digest=source_digest,
            calibration_fingerprint=data.fingerprint, recipe=recipe.to_dict(),
            seconds=round(time.perf_counter() - start, 2), size_bytes=size, **layers)

    def _write(self, model: Path, data: CalibrationData, recipe: Recipe, target: Target,
               out: Path, fmt: str, structure: str) -> dict[str, Any]:
        if fmt == "onnx":
            return self._onnx(model, data, recipe, target, out, structure)
        return self._openvino(model, data, recipe, target, out, structure)

    def _onnx(self, model: Path, data: CalibrationData, recipe: Recipe, target: Target,
              out: Path, structure: str) -> dict[str, Any]:
        import onnx

        if recipe.precision is Precision.FP32:
            shutil.copyfile(model, out)
            return summarize(onnx.load(str(out)))
        if recipe.precision is Precision.FP16:
            raise QuantizationError("FP16 ONNX is written by the onnxruntime backend; use "
                                    "--backend onnxruntime, or --format openvino here.")
        if recipe.precision is Precision.BF16:
            raise QuantizationError("bf16 is a precision OpenVINO computes an FP32 IR at; "
                                    "use --format openvino.")
        graph = onnx.load(str(model))
        constants_as_initializers(graph)
        require_linear_layers(graph, model)
        if recipe.precision is Precision.W4A8:
            graph = _w4a8_onnx(graph, model, data, recipe)
            activations = "dynamic int8 in MatMulNBits (accuracy_level 4)"
        else:
            graph = _int8(graph, data, recipe, target, (), structure)
            activations = "static int8"
        with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
            onnx.save(graph, str(Path(tmp) / out.name))
            shutil.move(str(Path(tmp) / out.name), out)
        return {**summarize(graph), "activations": activations}

    def _openvino(self, model: Path, data: CalibrationData, recipe: Recipe, target: Target,
                  out: Path, structure: str) -> dict[str, Any]:
        require("openvino", extra="openvino")
        import openvino as ov

        graph = ov.Core().read_model(str(model)) if is_ir(model) else (
            ov.convert_model(str(model)))
        names = ov_names(graph, recipe.ignored_nodes, model, optional=recipe.range_safety_nodes)
        activations = "float"
        if recipe.precision is Precision.W4A8:
            graph = _int4_weights(graph, data, recipe, names)
            activations = _dynamic_activations(graph) if structure == ATTENTION else (
                "static int8")
        if recipe.precision is Precision.INT8 or activations == "static int8":
            graph = _int8(graph, data, recipe, target, names, structure)
            activations = "static int8"
        # FP32 and BF16 keep f32 weights: a bf16 IR is the FP32 IR run at bf16 (its bundle's
        # precision hint), so the weights the runtime rounds are the exported ones.
        ov.save_model(graph, str(out), compress_to_fp16=recipe.precision is Precision.FP16)
        return {**summarize_ov(graph), "activations": activations}

