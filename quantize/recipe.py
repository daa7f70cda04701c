"""Recipes say what to do to weights and activations; they know no backend."""

from __future__ import annotations

import dataclasses
from enum import StrEnum
from typing import Any

from frugalml.core.records import check_schema, digest, to_jsonable
from frugalml.errors import QuantizationError


class Precision(StrEnum):
    """What the deployed model computes in."""

    FP32 = "fp32"
    FP16 = "fp16"
    # FP32 weights computed in bf16 by a runtime with native bf16 (OpenVINO on AMX or
    # AVX512-BF16 CPUs): no calibration, half the bytes per multiply, 8 bits of mantissa.
    BF16 = "bf16"
    INT8 = "int8"
    W4A8 = "w4a8"


class CalibrationMethod(StrEnum):
    """How activation ranges are read from the calibration part."""

    MINMAX = "minmax"
    PERCENTILE = "percentile"
    ENTROPY = "entropy"


# Data-aware ways to choose 4-bit weights; the empty set is plain rounding (data-free).
WEIGHT_METHODS = ("awq", "scale_estimation", "gptq")
GROUP_SIZES = (32, 64, 128)
FLOAT_PRECISIONS = ("fp32", "bf16")


DEFAULT_MIN_COSINE = 0.99


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Budget:
    """What a quantized model must reach against FP32 to ship.

    Each evaluator checks the limits that apply to its task: classification the top-1 drop
    and the top-1 agreement with FP32, embeddings the probe-accuracy drop, detectors the share
    of FP32 detections kept, language models the perplexity rise, streaming detectors the
    frame and segment (detection) agreement of their decision. The cosine limit applies to
    every output, and to every channel group of an output whose channels differ in scale,
    of every task but language models; the size limit applies to every task.
    """

    # None: 0.99 (DEFAULT_MIN_COSINE) for every task but classifiers, whose logits' cosine is
    # loose where top-1 is exact (EfficientNet-Lite0 INT8: 0.979 with top-1 within 1 point);
    # a cosine given for a classifier is checked too.
    min_mean_cosine: float | None = None
    max_accuracy_drop_points: float = 1.0
    min_top1_agreement: float = 0.0
    min_detection_agreement: float = 0.95
    # Streaming detectors: the share of steps whose thresholded decision matches FP32's.
    min_frame_agreement: float = 0.99
    max_perplexity_increase_pct: float = 20.0
    max_size_ratio: float = 0.30
    must_be_faster: bool = True

    @property
    def cosine_limit(self) -> float:
        """The least mean cosine to FP32 an output (or a part of one) must keep."""
        return DEFAULT_MIN_COSINE if self.min_mean_cosine is None else self.min_mean_cosine

    def __post_init__(self) -> None:
        """Refuse budgets no model can meet, instead of reporting a failure after the work.

        Raises:
            QuantizationError: naming the impossible limit.
        """
        problems = []
        if self.min_mean_cosine is not None and not -1.0 <= self.min_mean_cosine <= 1.0:
            problems.append(f"min_mean_cosine {self.min_mean_cosine} (a cosine is at most 1)")
        if not self.max_accuracy_drop_points >= 0.0:
            problems.append(f"max_accuracy_drop_points {self.max_accuracy_drop_points} "
                            "(a drop below 0 asks the quantized model to beat FP32)")
        if not 0.0 <= self.min_top1_agreement <= 1.0:
            problems.append(f"min_top1_agreement {self.min_top1_agreement} (a share in [0, 1])")
        if not 0.0 <= self.min_detection_agreement <= 1.0:
            problems.append(f"min_detection_agreement {self.min_detection_agreement} "
                            "(a share in [0, 1])")
        if not 0.0 <= self.min_frame_agreement <= 1.0:
            problems.append(f"min_frame_agreement {self.min_frame_agreement} (a share in [0, 1])")
        if not self.max_perplexity_increase_pct >= 0.0:
            problems.append(f"max_perplexity_increase_pct {self.max_perplexity_increase_pct} "
                            "(below 0 asks the quantized model to beat FP32)")
        if not self.max_size_ratio > 0.0:
            problems.append(f"max_size_ratio {self.max_size_ratio} (sizes are positive)")
        if problems:
            raise QuantizationError(f"This accuracy budget cannot be met: {'; '.join(problems)}."
                                    " Loosen it (e.g. --min-cosine 0.99 --max-drop 1.0).")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Recipe:
    """What to do to weights and activations, and the accuracy budget the result must meet.

    - ``op_types``: the operator types whose inputs get INT8 activations; empty lets the
      backend choose from the graph (every quantizable operator for CNNs, so ReLU6/Clip and
      residual adds stay in the integer chain; only MatMul for transformers).
    - ``float_activations_after``: op types whose outputs feed the next linear layer in float;
      that layer keeps int8 weights but not int8 activations. NOTE: the default, GELU, comes
      from a measurement on all-MiniLM-L6-v2: quantizing the FFN down-projections' inputs per
      tensor dropped the mean embedding cosine from 0.991 to 0.987 (MinMax, 100 texts).
    - ``ignored_nodes``: node names kept entirely in float (what `frugal diagnose` emits).
    - ``range_safe``: keep the output tail, and shared-scale nodes whose inputs' ranges
      differ more than 8x, in float (:mod:`frugalml.quantize.range_safety`);
      ``range_safety_nodes`` is where `quantize` puts them for the backend (one that cannot
      find a node, as OpenVINO fuses some, skips it; a missing ``ignored_nodes`` is an error).
    - ``group_size``/``weight_symmetric``/``weight_methods``: the 4-bit weights of ``w4a8``.
    - ``dynamic_activations``: INT8 activations quantized per call at run time (ONNX
      Runtime's dynamic quantization of MatMul/Gemm; recipe ``int8-dynamic``), no calibration.
    - ``float_precision``: what the runtime computes the ops left in float at (``fp32``, or
      ``bf16`` for an OpenVINO IR on a CPU with native bf16: AMX, AVX512-BF16); scored and
      bundled at it.
    """

    schema_version: int = 2
    precision: Precision = Precision.INT8
    calibration_method: CalibrationMethod = CalibrationMethod.MINMAX
    calibration_items: int = 300
    per_channel: bool = True
    op_types: tuple[str, ...] = ()
    float_activations_after: tuple[str, ...] = ("Gelu",)
    quantize_embeddings: bool = True
    ignored_nodes: tuple[str, ...] = ()
    range_safe: bool = True
    range_safety_nodes: tuple[str, ...] = ()
    dynamic_activations: bool = False
    smooth_quant_alpha: float | None = None
    bias_correction: bool = True
    group_size: int = 128
    weight_symmetric: bool = True
    weight_methods: tuple[str, ...] = ()
    float_precision: str = "fp32"
    budget: Budget = dataclasses.field(default_factory=Budget)

    def __post_init__(self) -> None:
        """Raises QuantizationError for options no backend can follow."""
        problems = []
        if self.calibration_items < 1:
            problems.append(f"calibration_items is {self.calibration_items}; a static recipe "
                            "needs at least 1 calibration item (300 is typical)")
        if self.group_size not in GROUP_SIZES:
            problems.append(f"group_size {self.group_size} is not one of {GROUP_SIZES}")
        unknown = sorted(set(self.weight_methods) - set(WEIGHT_METHODS))
        if unknown:
            problems.append(f"unknown weight methods {unknown}; known: {WEIGHT_METHODS}")
        if self.float_precision not in FLOAT_PRECISIONS:
            problems.append(f"float_precision {self.float_precision!r} is not one of "
                            f"{FLOAT_PRECISIONS}")
        if self.smooth_quant_alpha is not None and not 0.0 <= self.smooth_quant_alpha <= 1.0:
            problems.append(f"smooth_quant_alpha {self.smooth_quant_alpha} is outside [0, 1]")
        if problems:
            raise QuantizationError("Invalid recipe: " + "; ".join(problems) + ".")

    @property
    def float_nodes(self) -> tuple[str, ...]:
        """Every node kept in float: the user's, then range safety's."""
        return self.ignored_nodes + tuple(n for n in self.range_safety_nodes
                                          if n not in self.ignored_nodes)

    @property
    def computes_bf16(self) -> bool:
        """True when the runtime computes this model's float arithmetic in bf16 (a bf16
        recipe, or INT8 whose float ops run at bf16)."""
        return self.precision is Precision.BF16 or self.float_precision == "bf16"

    @property
    def digest(self) -> str:
        """Content id used in cache keys."""
        return digest("recipe", self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return to_jsonable(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Recipe:
        """Inverse of :meth:`to_dict`."""
        check_schema(data, "Recipe", 2)
        values = {k: v for k, v in data.items() if k != "schema_version"}
        for key in ("op_types", "float_activations_after", "ignored_nodes", "weight_methods",
                    "range_safety_nodes"):
            values[key] = tuple(values.get(key, ()))
        values["precision"] = Precision(values["precision"])
        values["calibration_method"] = CalibrationMethod(values["calibration_method"])
        values["budget"] = Budget(**values["budget"])
        try:
            return cls(**values)
        except TypeError as e:
            raise QuantizationError(f"Recipe fields not understood: {e}.") from e


def _int8(**options: Any) -> Recipe:
    return Recipe(**options)


def _int8_dynamic(**options: Any) -> Recipe:
    return Recipe(dynamic_activations=True, **options)


def _w4a8(**options: Any) -> Recipe:
    # 4x smaller than FP32 at least; 4-bit weights cost more accuracy than int8 ones.
    options.setdefault("budget", Budget(min_mean_cosine=0.98, max_accuracy_drop_points=1.5,
                                        max_size_ratio=0.25))
    return Recipe(precision=Precision.W4A8, **options)


def _fp16(**options: Any) -> Recipe:
    options.setdefault("budget", Budget(min_mean_cosine=0.999, max_accuracy_drop_points=0.5,
                                        max_size_ratio=0.55, must_be_faster=False))
    return Recipe(precision=Precision.FP16, **options)


def _bf16(**options: Any) -> Recipe:
    # NOTE: bf16 keeps fp32's range with an 8-bit mantissa. Measured on an AMX Xeon (OpenVINO
    # at bf16 vs ONNX Runtime FP32): EfficientNet-Lite0 cosine 0.99984, MiniLM 0.99997; the
    # limits leave room for that and refuse a model bf16 really breaks. The weights are the
    # FP32 ones: an IR's size differs from the ONNX file's only by its XML (a few KB, 18 % of
    # a 17 KB test MLP), so the size limit only catches accidents.
    options.setdefault("budget", Budget(min_mean_cosine=0.999, max_accuracy_drop_points=0.5,
                                        max_perplexity_increase_pct=1.0, max_size_ratio=1.5,
                                        must_be_faster=True))
    return Recipe(precision=Precision.BF16, **options)


def _fp32(**options: Any) -> Recipe:
    options.setdefault("budget", Budget(min_mean_cosine=0.99999, max_accuracy_drop_points=0.0,
                                        max_perplexity_increase_pct=0.0, max_size_ratio=1.01,
                                        must_be_faster=False))
    return Recipe(precision=Precision.FP32, **options)


RECIPES = {"int8": _int8, "int8-dynamic": _int8_dynamic, "w4a8": _w4a8, "fp16": _fp16,
           "bf16": _bf16, "fp32": _fp32}


def get_recipe(name: str, **options: Any) -> Recipe:
    """The named recipe with ``options`` (Recipe fields) applied.

    Raises:
        QuantizationError: the name is unknown (the message lists the known recipes), or an
            option is not a recipe field.
    """
    if name not in RECIPES:
        raise QuantizationError(f"Unknown recipe {name!r}; known recipes: {', '.join(RECIPES)}.")
    try:
        return RECIPES[name](**options)
    except TypeError as e:
        raise QuantizationError(f"Recipe {name!r} does not take these options: {e}.") from e
