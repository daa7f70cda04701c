"""Transformer fusions for ONNX Runtime: attention, skip layer norm, bias GELU, rotary
embedding, as onnxscript's ``ort_fusions`` rewriter finds them in a dynamo export (ORT's own
transformer optimizer matches the TorchScript exporter's patterns and fuses no attention in a
dynamo graph: 0 of 6 on all-MiniLM-L6-v2, against 6 with ``ort_fusions``).

The fused graph is kept only if every output matches the unfused one on real inputs within
the export tolerance; a fusion that changes the numbers is an error, never a silent result.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from frugalml.errors import ExportError
from frugalml.export.lean_rewrites import lean_rewrites
from frugalml.export.records import ExportedModel, items_in
from frugalml.export.simplify import run_onnx
from frugalml.export.validate import DEFAULT_TOLERANCE, Tolerance, compare_outputs

MODEL_NAME = "model.onnx"
EXPORTER = "onnxscript.ort_fusions"


def fuse_for_onnxruntime(exported: ExportedModel, out_dir: Path,
                         feeds: Sequence[Mapping[str, np.ndarray]],
                         tolerance: Tolerance = DEFAULT_TOLERANCE) -> ExportedModel:
    """Fuse ``exported`` (an ONNX export) into ``out_dir/model.onnx``, checked on ``feeds``.

    Raises:
        ExportError: nothing fused (the graph has no pattern the rewriter knows), the fused
            graph does not run, or its outputs differ from the unfused graph's.
    """
    import onnx_ir as ir
    from onnxscript.rewriter.ort_fusions import optimize_for_ort

    started = time.perf_counter()
    if not feeds:
        raise ExportError("Fusion needs real inputs to check the fused graph against the "
                          "unfused one; none were given.")
    with lean_rewrites():
        model, counts = optimize_for_ort(ir.load(str(exported.path)))
    fused = {name: n for name, n in counts.items() if n}
    if not fused:
        raise ExportError(f"No transformer pattern fused in {exported.path} (onnxscript "
                          "ort_fusions found none): the unfused graph is what runs.")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / MODEL_NAME
    ir.save(model, str(path))
    names = list(exported.output_names)
    try:
        got = run_onnx(path, feeds, names)
    except Exception as e:  # onnxruntime raises its own exception types
        raise ExportError(f"The fused graph does not run in ONNX Runtime: {str(e)[:300]}") from e
    checks = compare_outputs(run_onnx(exported.path, feeds, names), got, tolerance, feeds)
    return dataclasses.replace(
        exported, path=path, exporter=EXPORTER, checks=checks, inputs_used=items_in(feeds),
        fusions=tuple(f"{name} x{n}" for name, n in fused.items()),
        size_bytes=path.stat().st_size, seconds=round(time.perf_counter() - started, 3))
