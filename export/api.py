"""``export()``: one entry point for torch modules, Hugging Face models and ONNX files.

Whatever the source, the result lands atomically in one directory: ``model.onnx`` (plus
``model.xml``/``model.bin`` for OpenVINO) and ``export.json``, the record of how it was made
and how closely it matches the source.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from frugalml.core.atomic import staged
from frugalml.errors import ExportError
from frugalml.export import huggingface as hf
from frugalml.export.decoder import export_decoder
from frugalml.export.exporters import DEFAULT_OPSET, GraphSpec
from frugalml.export.gguf import gguf_model_dir
from frugalml.export.openvino import check_ir_pair, import_ir, to_openvino
from frugalml.export.passthrough import import_onnx
from frugalml.export.records import RECORD_NAME, ExportedModel
from frugalml.export.torch_module import count_outputs, export_module
from frugalml.export.validate import DEFAULT_TOLERANCE, Tolerance
from frugalml.runtime.formats import OPENVINO, is_gguf, is_onnx, model_format

FORMATS = ("onnx", "openvino")
Feeds = Mapping[str, np.ndarray]


def export(
    model: Any, out_dir: Path, *, format: str = "onnx", opset: int = DEFAULT_OPSET,
    fp16: bool = False, task: str | None = None, example: Feeds | None = None,
    spec: GraphSpec | None = None, validation: Sequence[Feeds] = (),
    texts: Sequence[str] | None = None, images: Sequence[Any] | None = None,
    tolerance: Tolerance = DEFAULT_TOLERANCE, simplify_graph: bool = True,
) -> ExportedModel:
    """Export ``model`` into ``out_dir`` and validate it; nothing is left there on failure.

    ``model`` is a ``torch.nn.Module`` (give ``example`` inputs, and ``spec`` to name outputs
    or set dynamic axes; default: axis 0 of every input is ``batch``), a Hugging Face model or
    model directory (``task`` inferred from its config unless given), or an ``.onnx`` path
    (checked, shape-inferred and copied with its external data).

    Raises:
        ExportError: unknown format, missing or malformed source, failed export or validation.
    """
    if format not in FORMATS:
        raise ExportError(f"Unknown format {format!r}; choose one of {', '.join(FORMATS)}.")
    out_dir = Path(out_dir).resolve()
    started = time.perf_counter()
    if isinstance(model, (str, Path)) and model_format(model) == OPENVINO:
        return _export_ir(Path(model), out_dir, format, validation, tolerance, started)
    with staged(out_dir, error=ExportError) as stage:
        record, feeds = _to_onnx(model, stage, opset=opset, task=task, example=example,
                                 spec=spec, validation=validation, texts=texts, images=images,
                                 tolerance=tolerance, simplify_graph=simplify_graph,
                                 repro_dir=out_dir.with_name(f"{out_dir.name}-repro"))
        if format == "openvino":
            ov_tolerance = _fp16_tolerance(tolerance) if fp16 else tolerance
            record = to_openvino(record.path, stage, reference=record, feeds=feeds, fp16=fp16,
                                 tolerance=ov_tolerance)
        record = _write_record(record, stage, out_dir, started)
    return record


def _export_ir(path: Path, out_dir: Path, format: str, validation: Sequence[Feeds],
               tolerance: Tolerance, started: float) -> ExportedModel:
    """An existing OpenVINO IR: checked, read and copied (there is no way back to ONNX)."""
    check_ir_pair(path)
    if format != "openvino":
        raise ExportError(f"{path} is an OpenVINO IR, which cannot be converted to ONNX. Pass "
                          "--format openvino to check and copy it, or export the original "
                          "model to ONNX.")
    with staged(out_dir, error=ExportError) as stage:
        record = import_ir(path, stage, validation=validation, tolerance=tolerance)
        record = _write_record(record, stage, out_dir, started)
    return record


def _write_record(record: ExportedModel, stage: Path, out_dir: Path, started: float
                  ) -> ExportedModel:
    """Stamp the wall time and write ``export.json`` into the staging dir, with the path the
    model will have once the staging dir becomes ``out_dir`` (not the staging path)."""
    record = dataclasses.replace(record, seconds=round(time.perf_counter() - started, 3),
                                 path=out_dir / record.path.relative_to(stage))
    (stage / RECORD_NAME).write_text(json.dumps(record.to_dict(), indent=2) + "\n")
    return record


def read_export(out_dir: Path) -> ExportedModel:
    """The record of an earlier :func:`export` into ``out_dir``."""
    data = json.loads((Path(out_dir) / RECORD_NAME).read_text())
    data["path"] = str(Path(out_dir) / Path(data["path"]).name)
    return ExportedModel.from_dict(data)


def _fp16_tolerance(tolerance: Tolerance) -> Tolerance:
    """FP16 weights keep ~3 significant digits: loosen to at least 1e-3 abs / 0.9999 cosine."""
    return Tolerance(atol=max(tolerance.atol, 1e-3), rtol=max(tolerance.rtol, 1e-3),
                     min_cosine=min(tolerance.min_cosine, 0.9999))


def _to_onnx(model: Any, stage: Path, *, opset: int, task: str | None, example: Feeds | None,
             spec: GraphSpec | None, validation: Sequence[Feeds], texts: Sequence[str] | None,
             images: Sequence[Any] | None, tolerance: Tolerance, simplify_graph: bool,
             repro_dir: Path) -> tuple[ExportedModel, list[Feeds]]:
    """Dispatch on the kind of source; returns the ONNX record and the feeds it was checked on."""
    if isinstance(model, (str, Path)):
        path = Path(model)
        if is_gguf(path):
            path = gguf_model_dir(path)
        if is_onnx(path) or path.is_file():
            return import_onnx(path, stage, validation=validation, tolerance=tolerance,
                               simplify_graph=simplify_graph), list(validation)
        task = task or hf.infer_task(path)
        if task == hf.WITH_PAST:  # checked token by token against torch, not on feeds

            if hf.infer_task(path) != "text-generation":
                raise ExportError(f"--task {hf.WITH_PAST} exports a causal language model "
                                  f"with its KV cache; {path} is a {hf.infer_task(path)} "
                                  "model (its config names no ...ForCausalLM).")
            return export_decoder(path, stage, opset=opset, tolerance=tolerance), []
        feeds = list(validation) or hf.huggingface_feeds(path, task, texts, images)
        return hf.export_huggingface(path, stage, task=task, validation=feeds, opset=opset,
                                     tolerance=tolerance, simplify_graph=simplify_graph,
                                     repro_dir=repro_dir), feeds
    if _is_huggingface(model):
        if not validation:
            raise ExportError("A loaded Hugging Face model needs `validation` inputs (real "
                              "tokenized text or pixel_values); or pass its directory instead.")
        return hf.export_huggingface(model, stage, task=task, validation=validation,
                                     opset=opset, tolerance=tolerance,
                                     simplify_graph=simplify_graph, repro_dir=repro_dir
                                     ), list(validation)
    return _export_torch(model, stage, example, spec, validation, opset, tolerance,
                         simplify_graph, repro_dir)


def _export_torch(module: Any, stage: Path, example: Feeds | None, spec: GraphSpec | None,
                  validation: Sequence[Feeds], opset: int, tolerance: Tolerance,
                  simplify_graph: bool, repro_dir: Path) -> tuple[ExportedModel, list[Feeds]]:
    import torch

    if not isinstance(module, torch.nn.Module):
        raise ExportError(f"Cannot export a {type(module).__name__}: pass a torch.nn.Module, a "
                          "Hugging Face model or directory, or an .onnx file path.")
    if example is None:
        raise ExportError("Exporting a torch module needs `example`: a dict of real input "
                          "arrays named as the graph inputs should be.")
    if spec is None:
        names = tuple(example)
        count = count_outputs(module, example)
        outputs = ("output",) if count == 1 else tuple(f"output_{i}" for i in range(count))
        spec = GraphSpec(names, outputs, {n: {0: "batch"} for n in names})
    record = export_module(module, example, stage, spec, validation=validation,
                           tolerance=tolerance, opset=opset, simplify_graph=simplify_graph,
                           repro_dir=repro_dir)
    return record, [dict(example), *validation]


def _is_huggingface(model: Any) -> bool:
    return any(c.__name__ == "PreTrainedModel" for c in type(model).__mro__)
