"""An existing ``.onnx`` file as an export: checked, shape-inferred, copied with its data.

There is no source model to compare against, so the file is checked for integrity (whole,
valid, external data inside its directory), its shapes are inferred, and it must load in
ONNX Runtime. If it is simplified, the simplified graph is compared with the original on the
given inputs.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from frugalml.core.records import file_sha256
from frugalml.errors import ExportError
from frugalml.export.onnx_file import load_checked, opset_of, save_onnx
from frugalml.export.records import ExportedModel, items_in
from frugalml.export.simplify import run_onnx, simplify
from frugalml.export.validate import DEFAULT_TOLERANCE, Tolerance, compare_outputs

MODEL_NAME = "model.onnx"


def import_onnx(source: Path, out_dir: Path, *,
                validation: Sequence[Mapping[str, np.ndarray]] = (),
                tolerance: Tolerance = DEFAULT_TOLERANCE, simplify_graph: bool = True
                ) -> ExportedModel:
    """Check ``source`` and write it to ``out_dir/model.onnx`` (shape-inferred).

    Raises:
        ExportError: the file is missing, truncated, not ONNX, invalid, names external data
            outside its directory, or does not run in ONNX Runtime on ``validation``.
    """
    import onnx

    started = time.perf_counter()
    source = Path(source)
    model = load_checked(source)
    path = out_dir / MODEL_NAME
    inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    outputs = tuple(o.name for o in inferred.graph.output)
    initializers = {i.name for i in inferred.graph.initializer}
    inputs = tuple(i.name for i in inferred.graph.input if i.name not in initializers)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_onnx(inferred, path)
    reference = _run(path, validation, outputs)
    simplified, checks = False, ()
    if validation:
        if simplify_graph:
            inferred, simplified = simplify(inferred, validation, reference, outputs, tolerance)
            if simplified:
                save_onnx(inferred, path)
        checks = compare_outputs(reference, _run(path, validation, outputs), tolerance,
                                 validation)
    return ExportedModel(
        path=path, source=str(source), source_digest=file_sha256(source), exporter="passthrough",
        opset=opset_of(inferred), input_names=inputs, output_names=outputs, checks=checks,
        inputs_used=items_in(validation) if validation else 0, simplified=simplified,
        size_bytes=sum(p.stat().st_size for p in out_dir.glob(f"{MODEL_NAME}*")),
        seconds=round(time.perf_counter() - started, 3))


def _run(path: Path, feeds: Sequence[Mapping[str, np.ndarray]], outputs: tuple[str, ...]
         ) -> list[dict[str, np.ndarray]]:
    try:
        return run_onnx(path, feeds, outputs)  # with no feeds: only proves it loads
    except Exception as e:  # onnxruntime raises its own exception types
        raise ExportError(f"ONNX Runtime cannot run {path.name}: {str(e)[:400]}. Check the "
                          "input names, shapes and dtypes, and the model's opset.") from e
