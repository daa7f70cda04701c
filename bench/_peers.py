"""The routes bench/compare_peers.py measures: each peer through its own public API with its
documented defaults, and frugalml's own, all fed the same calibration items.

A route writes one model file into ``out`` and returns its path. Peers get only what their
quick-start passes: the model and calibration data (plus the 4-bit mode where a call has no
4-bit default). ``eval_items`` is what frugalml's own accuracy check scores before it writes
a model (part of its time); peers have no such step and ignore it. Every route runs in its
own process (see compare_peers), so its wall time and peak RSS are its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

Route = Callable[[Path, Any, Path, int], Path]


def calibration_feeds(data: Any, limit: int | None = None) -> list[dict[str, Any]]:
    """The calibration part as single-item feed dicts, the form every peer's API accepts."""
    return [feeds for feeds, _ in data.batches("calibration", batch_size=1, limit=limit)]


def _ort_reader(feeds: list[dict[str, Any]]) -> Any:
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._items: Iterator[dict[str, Any]] = iter(feeds)

        def get_next(self) -> dict[str, Any] | None:
            return next(self._items, None)

    return Reader()


def ort_static_default(fp32: Path, data: Any, out: Path, eval_items: int) -> Path:
    """onnxruntime.quantization.quantize_static with its defaults (QDQ, S8 activations and
    weights, per-tensor, MinMax), no pre-processing."""
    from onnxruntime.quantization import quantize_static

    path = out / "model.onnx"
    quantize_static(str(fp32), str(path), _ort_reader(calibration_feeds(data)))
    return path


def ort_dynamic_default(fp32: Path, data: Any, out: Path, eval_items: int) -> Path:
    """onnxruntime.quantization.quantize_dynamic with its defaults (weights int8, activations
    quantized at run time): the transformer route ONNX Runtime's docs recommend."""
    from onnxruntime.quantization import quantize_dynamic

    path = out / "model.onnx"
    quantize_dynamic(str(fp32), str(path))
    return path


def ort_matmulnbits_default(fp32: Path, data: Any, out: Path, eval_items: int) -> Path:
    """ONNX Runtime's 4-bit weight quantizer with its defaults (block 128, asymmetric, no
    accuracy_level: float activations)."""
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    quantizer = MatMulNBitsQuantizer(onnx.load(str(fp32)))
    quantizer.process()
    path = out / "model.onnx"
    quantizer.model.save_model_to_file(str(path), use_external_data_format=False)
    return path


def nncf_onnx_default(fp32: Path, data: Any, out: Path, eval_items: int) -> Path:
    """nncf.quantize on the ONNX model with defaults; run in ONNX Runtime."""
    import nncf
    import onnx

    quantized = nncf.quantize(onnx.load(str(fp32)), nncf.Dataset(calibration_feeds(data)))
    path = out / "model.onnx"
    onnx.save(quantized, str(path))
    return path


def nncf_openvino_default(fp32: Path, data: Any, out: Path, eval_items: int) -> Path:
    """nncf.quantize on the OpenVINO model with defaults; saved with ov.save_model's defaults;
    run in OpenVINO."""
    import nncf
    import openvino as ov

    model = ov.Core().read_model(str(fp32))
    quantized = nncf.quantize(model, nncf.Dataset(calibration_feeds(data)))
    path = out / "model.xml"
    ov.save_model(quantized, str(path))
    return path


def nncf_int4_default(fp32: Path, data: Any, out: Path, eval_items: int) -> Path:
    """nncf.compress_weights on the OpenVINO model in INT4_SYM, other parameters default
    (group 128, no data-aware method); run in OpenVINO."""
    import nncf
    import openvino as ov

    model = ov.Core().read_model(str(fp32))
    compressed = nncf.compress_weights(model, mode=nncf.CompressWeightsMode.INT4_SYM)
    path = out / "model.xml"
    ov.save_model(compressed, str(path))
    return path


def optimum_ort_dynamic(fp32: Path, data: Any, out: Path, eval_items: int) -> Path:
    """optimum-onnx's ORTQuantizer with AutoQuantizationConfig.avx2(is_static=False), its
    quick-start configuration (its static mode needs a `datasets` Dataset to calibrate)."""
    from optimum.onnxruntime import ORTQuantizer
    from optimum.onnxruntime.configuration import AutoQuantizationConfig

    quantizer = ORTQuantizer.from_pretrained(fp32.parent, file_name=fp32.name)
    quantizer.quantize(save_dir=out, quantization_config=AutoQuantizationConfig.avx2(
        is_static=False, per_channel=False))
    return next(out.glob("*quantized.onnx"))


def optimum_ov_static(fp32: Path, data: Any, out: Path, eval_items: int) -> Path:
    """optimum-intel's OVQuantizer with a default OVQuantizationConfig, on the same model
    read into OpenVINO; run in OpenVINO."""
    import nncf
    import openvino as ov
    from optimum.intel import (
        OVConfig,
        OVModelForFeatureExtraction,
        OVQuantizationConfig,
        OVQuantizer,
    )
    from transformers import AutoConfig

    from frugalml.demo import default_model_dir

    model = OVModelForFeatureExtraction(ov.Core().read_model(str(fp32)),
                                        AutoConfig.from_pretrained(default_model_dir()))
    OVQuantizer(model).quantize(calibration_dataset=nncf.Dataset(calibration_feeds(data)),
                                save_directory=out,
                                ov_config=OVConfig(quantization_config=OVQuantizationConfig()))
    return next(out.glob("*.xml"))


def frugalml_recipe(recipe: str, backend: str = "onnxruntime", output_format: str = "onnx",
                    **options: Any) -> Route:
    """frugalml's quantize for this host's target (its accuracy check is part of its time:
    it scores the result on the evaluation part before writing it)."""

    def route(fp32: Path, data: Any, out: Path, eval_items: int) -> Path:
        from frugalml.quantize.api import quantize
        from frugalml.quantize.recipe import get_recipe

        record = quantize(fp32, data, out / "q", recipe=get_recipe(recipe, **options),
                          backend=backend, output_format=output_format,
                          eval_items=eval_items, allow_over_budget=True)
        return record.path

    return route
