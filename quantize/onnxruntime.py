"""Static INT8 through ONNX Runtime's `quantize_static` (QDQ, per-channel weights)."""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from frugalml.errors import QuantizationError, require
from frugalml.quantize._protocol import CalibrationData
from frugalml.quantize._weight_only import weight_only_int8
from frugalml.quantize.recipe import CalibrationMethod, Precision, Recipe
from frugalml.quantize.records import QuantizedModel
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
        self._count = 0
        self._last: dict[str, Any] | None = None
        self._padded = False

    def get_next(self) -> dict[str, Any] | None:
        item = next(self._items, None)
        if item is not None:
            self._count += 1
            self._last = item
            return item
        if self._count and self._count % MERGE_EVERY == 0 and not self._padded:
            self._padded = True
            return self._last
        return None

    def rewind(self) -> None:  # pragma: no cover - ORT only calls this for some calibrators
        raise QuantizationError("Calibration data is streamed once; rewinding is not supported.")


def _plan(model: Any, recipe: Recipe) -> tuple[list[str], dict[str, tuple[int, int]]]:
    """Split linear layers into int8-activation ones and weight-only ones; find embedding tables.

    Returns:
        (MatMul nodes excluded from activation quantization, weight-only targets)
    """
    inits = {i.name for i in model.graph.initializer}
    producer = {out: node.op_type for node in model.graph.node for out in node.output}
    excluded, weight_only = [], {}
    for node in model.graph.node:
        if node.op_type == "MatMul":
            if node.input[1] not in inits:  # activation x activation (attention): stays float
                excluded.append(node.name)
            elif producer.get(node.input[0]) in recipe.float_activations_after:
                excluded.append(node.name)
                weight_only[node.name] = (1, 1)  # W[K, N]: one scale per output column
        elif node.op_type == "Gather" and recipe.quantize_embeddings and node.input[0] in inits:
            weight_only[node.name] = (0, 0)  # table[V, D]: one scale per row
    return excluded, weight_only


def _quantize_static(pre: Path, qdq: Path, data: CalibrationData, recipe: Recipe,
                     target: Target, excluded: list[str]) -> None:
    """Calibrate on the calibration part and write the QDQ model.

    Raises:
        QuantizationError: ONNX Runtime fails during calibration or quantization.
    """
    from onnxruntime import quantization as q

    act, weight, reduce_range = _FORMATS[target.int8_format]
    items = (feeds for feeds, _ in data.batches(
        "calibration", batch_size=1, limit=recipe.calibration_items))
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            q.quantize_static(
                str(pre), str(qdq), StreamingReader(items), quant_format=q.QuantFormat.QDQ,
                per_channel=recipe.per_channel, activation_type=getattr(q.QuantType, act),
                weight_type=getattr(q.QuantType, weight), reduce_range=reduce_range,
                op_types_to_quantize=["MatMul"], nodes_to_exclude=excluded,
                calibrate_method=getattr(q.CalibrationMethod, _METHODS[recipe.calibration_method]),
                # Float MatMul outputs fuse into MatMulIntegerToFloat: one rounding less.
                # Bounded memory: ORT keeps every batch's calibration outputs (reduced min/max
                # for MinMax, whole activations for histogram methods) until the end unless
                # told to merge every N batches; min/max merge exactly.
                extra_options={"OpTypesToExcludeOutputQuantization": ["MatMul"],
                               "CalibMaxIntermediateOutputs": MERGE_EVERY},
            )
    except Exception as e:  # ORT raises untyped errors from deep inside calibration
        raise QuantizationError(f"ONNX Runtime static quantization failed: {e}") from e


class OnnxRuntimeQuantizer:
    """QDQ static INT8 with the target's activation/weight types; sensitive layers weight-only."""

    name = "onnxruntime"

    def quantize(
        self, model: Path, data: CalibrationData, recipe: Recipe, target: Target, out: Path,
        *, source_digest: str,
    ) -> QuantizedModel:
        """Calibrate on the calibration part, quantize, and write ``out``.

        Raises:
            QuantizationError: the recipe is not INT8, or ONNX Runtime fails.
        """
        require("onnxruntime", extra="runtime")
        require("onnx", extra="toolchain")
        import onnx
        from onnxruntime.quantization.shape_inference import quant_pre_process

        if recipe.precision is not Precision.INT8:
            raise QuantizationError(
                f"The onnxruntime quantizer makes INT8; recipe asks for {recipe.precision}."
            )
        logging.getLogger("onnxruntime").setLevel(logging.ERROR)
        with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
            pre, qdq = Path(tmp) / "pre.onnx", Path(tmp) / "qdq.onnx"
            # NOTE: symbolic shape inference fails on dynamo-exported graphs; ONNX's is enough.
            quant_pre_process(str(model), str(pre), skip_symbolic_shape=True)
            prepared = onnx.load(str(pre))
            excluded, weight_only = _plan(prepared, recipe)
            _quantize_static(pre, qdq, data, recipe, target, excluded)
            quantized = onnx.load(str(qdq))
            weight_only_done = weight_only_int8(quantized, weight_only)
            onnx.save(quantized, str(out))
        int8_layers = tuple(
            n.name for n in prepared.graph.node if n.op_type == "MatMul" and n.name not in excluded
        )
        return QuantizedModel(
            path=out, backend=self.name, int8_format=target.int8_format.value,
            source_digest=source_digest, calibration_fingerprint=data.fingerprint,
            recipe=recipe.to_dict(), int8_activation_layers=int8_layers,
            weight_only_layers=weight_only_done,
        )
