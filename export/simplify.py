"""Graph simplification with onnxslim, kept only when outputs stay equal within tolerance."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from frugalml.core.interrupt import reraise_if_interrupted
from frugalml.export.validate import Tolerance, compare_outputs

Feeds = Mapping[str, np.ndarray]


def run_onnx(model: Any, feeds: Sequence[Feeds], output_names: Sequence[str]
             ) -> list[dict[str, np.ndarray]]:
    """Run an ONNX file or in-memory ModelProto on CPU, once per feed dict."""
    import onnxruntime as ort

    source = str(model) if isinstance(model, (str, Path)) else model.SerializeToString()
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    return [dict(zip(output_names, session.run(list(output_names), dict(f)), strict=True))
            for f in feeds]


def simplify(model: Any, feeds: Sequence[Feeds], reference: Sequence[Mapping[str, np.ndarray]],
             output_names: Sequence[str], tolerance: Tolerance) -> tuple[Any, bool]:
    """Return ``(onnxslim's model, True)`` if it matches ``reference``, else ``(model, False)``.

    Simplification is an optimisation, never a requirement: if onnxslim fails or changes any
    output beyond ``tolerance``, the unsimplified model is kept.
    """
    import onnxslim

    if model.ByteSize() > 1_800_000_000:  # in-memory sessions cannot hold >2 GB protos
        return model, False
    try:
        slim = onnxslim.slim(model)
        compare_outputs(reference, run_onnx(slim, feeds, output_names), tolerance, feeds)
    except Exception as e:  # ExportError from the comparison, or anything onnxslim raises
        reraise_if_interrupted(e)
        return model, False
    return slim, True
