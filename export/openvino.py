"""ONNX (or a torch module) -> OpenVINO IR (.xml/.bin), checked against the source outputs.

``openvino.save_model`` compresses weights to FP16 by default; here FP32 is the default and
FP16 is asked for explicitly, and the record says which one was written.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from frugalml.core.records import digest, file_sha256
from frugalml.errors import ExportError, one_line, require
from frugalml.export.records import ExportedModel, items_in
from frugalml.export.simplify import run_onnx
from frugalml.export.validate import DEFAULT_TOLERANCE, Tolerance, compare_outputs
from frugalml.runtime.formats import ir_pair, ir_weights, model_files

Feeds = Mapping[str, np.ndarray]
IR_NAME = "model.xml"


def run_openvino(xml: Path, feeds: Sequence[Feeds], output_names: Sequence[str]
                 ) -> list[dict[str, np.ndarray]]:
    """Compile ``xml`` for the CPU and run it once per feed dict, outputs by name.

    At f32, as the runtime runs CPU bundles: OpenVINO's CPU default is bf16 on CPUs with
    AVX512_BF16 or AMX (a Zen 4 validated MiniLM's IR at min cosine 0.998 against torch).
    """
    import openvino as ov

    compiled = ov.Core().compile_model(str(xml), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    results = []
    for f in feeds:
        out = compiled(dict(f))
        results.append({name: np.asarray(out[compiled.output(name)]) for name in output_names})
    return results


def to_openvino(
    source: Path | Any, out_dir: Path, *, reference: ExportedModel | None = None,
    feeds: Sequence[Feeds] = (), expected: Sequence[Mapping[str, np.ndarray]] = (),
    fp16: bool = False, tolerance: Tolerance = DEFAULT_TOLERANCE,
) -> ExportedModel:
    """Convert an ONNX file (or torch module) to ``out_dir/model.xml`` + ``.bin`` and validate.

    ``expected`` holds the source model's outputs for ``feeds``; for an ONNX source without
    them, the ONNX file itself is run as the reference. FP16 weights get a looser default
    tolerance (FP16 keeps ~3 significant digits).

    Raises:
        ExportError: conversion failed, or the IR's outputs differ beyond ``tolerance``.
    """
    require("openvino", extra="openvino")
    import openvino as ov

    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    is_onnx = isinstance(source, (str, Path))
    try:
        if is_onnx:
            model = ov.convert_model(str(source))
        else:
            if not feeds:
                raise ExportError("Converting a torch module to OpenVINO needs example inputs.")
            example = tuple(_torch_tensor(v) for v in feeds[0].values())
            model = ov.convert_model(source, example_input=example)
    except Exception as e:  # the converter raises OpConversionFailure, RuntimeError, ...
        raise ExportError(
            f"OpenVINO could not convert {source}: {type(e).__name__}: {str(e)[:600]}\n"
            "Export to ONNX first (frugal export --format onnx) to see which operator fails."
        ) from e
    if not is_onnx or reference is not None:
        _name_io(model, reference.input_names if reference else tuple(feeds[0]),
                 reference.output_names if reference else ())
    xml = out_dir / IR_NAME
    ov.save_model(model, str(xml), compress_to_fp16=fp16)
    names = tuple(reference.output_names if reference else
                  (o.get_any_name() for o in model.outputs))
    checks: tuple[Any, ...] = ()
    if feeds:
        if not expected and is_onnx:
            expected = run_onnx(source, feeds, names)
        checks = compare_outputs(expected, run_openvino(xml, feeds, names), tolerance, feeds)
    return ExportedModel(
        path=xml, format="openvino", source=str(reference.source if reference else source),
        source_digest=reference.source_digest if reference else "",
        exporter=f"openvino.convert_model {ov.__version__}",
        opset=reference.opset if reference else 0,
        input_names=tuple(reference.input_names if reference else
                          (i.get_any_name() for i in model.inputs)),
        output_names=names, checks=checks,
        inputs_used=items_in(feeds),
        attempts=reference.attempts if reference else (), fp16_weights=fp16,
        size_bytes=sum(p.stat().st_size for p in model_files(xml)),
        seconds=round(time.perf_counter() - started, 3),
        decoder=reference.decoder if reference else None,  # the same graph, driven the same way
        gguf_sha256=reference.gguf_sha256 if reference else None,
    )


def check_ir_pair(path: Path) -> Path:
    """The ``.xml`` of an OpenVINO IR whose ``.xml`` and ``.bin`` both exist beside each other.

    Raises:
        ExportError: the file is missing, or one half of the pair is.
    """
    xml = ir_pair(path)
    weights = ir_weights(xml)
    if not path.exists():
        raise ExportError(f"{path} does not exist. Pass the .xml of an OpenVINO IR.")
    if not xml.is_file():
        raise ExportError(f"{path} is IR weights without their graph: {xml.name} is missing "
                          "beside it. Copy the .xml and .bin of the IR together.")
    if not weights.is_file():
        raise ExportError(f"{xml} is an IR graph without its weights: {weights.name} is "
                          "missing beside it. Copy the .xml and .bin of the IR together.")
    return xml


def import_ir(path: Path, out_dir: Path, *, validation: Sequence[Feeds] = (),
              tolerance: Tolerance = DEFAULT_TOLERANCE) -> ExportedModel:
    """Check an existing IR pair, read it, and save it into ``out_dir`` unchanged in precision.

    With ``validation`` inputs, the copy's outputs are compared with the original's.

    Raises:
        ExportError: half a pair, a corrupt or truncated IR, or outputs that differ.
    """
    require("openvino", extra="openvino")
    import openvino as ov

    started = time.perf_counter()
    xml = check_ir_pair(path)
    try:
        model = ov.Core().read_model(str(xml))
    except Exception as e:  # OpenVINO raises RuntimeError for malformed or truncated IR
        detail = one_line(e, 10_000)[-300:]
        raise ExportError(f"OpenVINO cannot read the IR {xml} ({detail}). The .xml or .bin is "
                          "corrupt, truncated, or from a different model: export it again.") from e
    saved = out_dir / IR_NAME
    ov.save_model(model, str(saved), compress_to_fp16=False)
    names = tuple(o.get_any_name() for o in model.outputs)
    checks: tuple[Any, ...] = ()
    if validation:
        checks = compare_outputs(run_openvino(xml, validation, names),
                                 run_openvino(saved, validation, names), tolerance, validation)
    return ExportedModel(
        path=saved, format="openvino", source=str(xml),
        source_digest=digest(*map(file_sha256, model_files(xml))),
        exporter=f"openvino.read_model {ov.__version__}", opset=0,
        input_names=tuple(i.get_any_name() for i in model.inputs), output_names=names,
        checks=checks, inputs_used=items_in(validation) if validation else 0,
        size_bytes=sum(p.stat().st_size for p in model_files(saved)),
        seconds=round(time.perf_counter() - started, 3),
    )


def _name_io(model: Any, input_names: Sequence[str], output_names: Sequence[str]) -> None:
    """Name the IR's ports like the ONNX export (a torch conversion leaves them unnamed)."""
    for port, name in zip(model.inputs, input_names, strict=False):
        port.get_tensor().set_names({name})
    for i, port in enumerate(model.outputs):
        port.get_tensor().set_names({output_names[i] if i < len(output_names) else
                                     f"output_{i}"})


def _torch_tensor(array: np.ndarray) -> Any:
    import torch

    return torch.from_numpy(np.ascontiguousarray(array))
