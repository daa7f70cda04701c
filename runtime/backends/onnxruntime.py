"""ONNX Runtime on CPU: the default backend for x86 and ARM bundles."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from frugalml.errors import BundleError


class OnnxRuntimeSession:
    """An ``onnxruntime.InferenceSession`` returning outputs by name."""

    def __init__(self, session: object) -> None:
        self._session = session
        self._output_names = [o.name for o in session.get_outputs()]  # type: ignore[attr-defined]

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run once; outputs keep the model's names."""
        values = self._session.run(self._output_names, dict(feeds))  # type: ignore[attr-defined]
        return dict(zip(self._output_names, values, strict=True))


class OnnxRuntimeBackend:
    """Opens ``.onnx`` and ``.ort`` files on the CPU execution provider."""

    name = "onnxruntime"
    module = "onnxruntime"

    def open(self, model_file: Path, *, threads: int) -> OnnxRuntimeSession:
        """Create a CPU session with all graph optimisations (they fuse QDQ into int8 kernels).

        Raises:
            BundleError: ONNX Runtime cannot load the file.
        """
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        try:
            session = ort.InferenceSession(
                str(model_file), options, providers=["CPUExecutionProvider"]
            )
        except Exception as e:  # ORT raises its own untyped errors for unreadable models
            raise BundleError(f"ONNX Runtime cannot load {model_file}: {e}") from e
        return OnnxRuntimeSession(session)
