"""ONNX Runtime on CPU: the default backend for x86 and ARM bundles."""

from __future__ import annotations

import json
import tempfile
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from frugalml.errors import BundleError, TargetError, one_line
from frugalml.runtime.backends._protocol import OpEvent


class OnnxRuntimeSession:
    """An ``onnxruntime.InferenceSession`` (whose ``run`` is thread-safe), outputs by name."""

    def __init__(self, session: Any, profile_dir: tempfile.TemporaryDirectory[str] | None
                 ) -> None:
        self._session = session
        self._output_names = [o.name for o in session.get_outputs()]
        self._profile_dir = profile_dir

    @property
    def inference_precision(self) -> str | None:
        """None: ONNX Runtime has no precision hint; each op runs in its graph's types (and
        on x86 it has no bf16 path for FP32 models, onnxruntime#19937)."""
        return None

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run once; outputs keep the model's names."""
        values = self._session.run(self._output_names, dict(feeds))
        return dict(zip(self._output_names, values, strict=True))

    def shared_cache(self, layout: Any, positions: int) -> Any:
        """A KV cache for one generation, kept in place in preallocated buffers (for graphs
        whose layout says ``shared_buffer``; see :mod:`._ort_cache`)."""
        from frugalml.runtime.backends._ort_cache import SharedCache

        if self._session is None:
            raise BundleError("The session is closed; load the bundle again.")
        return SharedCache(self._session, layout, positions)

    def op_events(self) -> list[OpEvent]:
        """Parse ONNX Runtime's profiling trace (node ``*_kernel_time`` events, microseconds).

        Raises:
            BundleError: the session was not opened with ``profile=True``.
        """
        if self._profile_dir is None:
            raise BundleError("Per-op times need a session opened with profile=True.")
        trace = Path(self._session.end_profiling())
        totals: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0])
        for event in json.loads(trace.read_text()):
            name = event.get("name", "")
            if event.get("cat") == "Node" and name.endswith("_kernel_time"):
                key = (name.removesuffix("_kernel_time"), event["args"].get("op_name", ""))
                totals[key][0] += float(event.get("dur", 0))
                totals[key][1] += 1
        trace.unlink(missing_ok=True)
        return [OpEvent(node=node, op_type=op, exec_type="", total_us=t, calls=int(n))
                for (node, op), (t, n) in totals.items()]

    def close(self) -> None:
        """Drop the session and any profiling files."""
        self._session = None
        if self._profile_dir is not None:
            self._profile_dir.cleanup()


OPTIMIZATION_HINT = "GRAPH_OPTIMIZATION_LEVEL"
# "1" lets intra-op threads spin between runs (ONNX Runtime's own default). Off here: on a
# shared or small machine spinning threads steal the cores the model needs (FP32 MiniLM ran
# 1.34x faster with it off on a busy 2-core host) and make timings depend on the neighbours.
SPINNING_HINT = "ALLOW_SPINNING"


def _optimization_level(name: str) -> Any:
    """ONNX Runtime's GraphOptimizationLevel for a hint value.

    Raises:
        TargetError: the value is not one of ONNX Runtime's levels.
    """
    import onnxruntime as ort

    levels = ("DISABLE_ALL", "ENABLE_BASIC", "ENABLE_EXTENDED", "ENABLE_ALL")
    if name not in levels:
        raise TargetError(f"{OPTIMIZATION_HINT}={name!r} is not one of {', '.join(levels)}.")
    return getattr(ort.GraphOptimizationLevel, f"ORT_{name}")


class OnnxRuntimeBackend:
    """Opens ``.onnx`` and ``.ort`` files on the CPU execution provider."""

    name = "onnxruntime"
    module = "onnxruntime"

    def open(self, model_file: Path, *, threads: int, streams: int = 1,
             profile: bool = False, device: str = "CPU",
             hints: Mapping[str, str] | None = None) -> OnnxRuntimeSession:
        """Create a CPU session with all graph optimisations (they fuse QDQ into int8 kernels).

        Concurrent ``run`` calls share one session; ``streams`` needs no setting. Of ``hints``
        ``GRAPH_OPTIMIZATION_LEVEL`` (``DISABLE_ALL`` runs Q/DQ as written: the reference
        semantics any CPU class must match, not this CPU's fused kernels) and
        ``ALLOW_SPINNING`` (default "0") apply here; other backends' hints are ignored.

        Raises:
            BundleError: ONNX Runtime cannot load the file.
            TargetError: a device other than the CPU was asked for.
        """
        import onnxruntime as ort

        if device != "CPU":
            raise TargetError(f"The onnxruntime backend here runs on the CPU only, not "
                              f"{device}; use the openvino backend for Intel GPUs.")

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = _optimization_level(
            (hints or {}).get(OPTIMIZATION_HINT, "ENABLE_ALL"))
        options.log_severity_level = 3
        spinning = (hints or {}).get(SPINNING_HINT, "0")
        if spinning not in ("0", "1"):
            raise TargetError(f"{SPINNING_HINT}={spinning!r} must be '0' or '1'.")
        options.add_session_config_entry("session.intra_op.allow_spinning", spinning)
        profile_dir = tempfile.TemporaryDirectory(prefix="frugal-ort-profile-") if profile else None
        if profile_dir is not None:
            options.enable_profiling = True
            options.profile_file_prefix = str(Path(profile_dir.name) / "ort")
        try:
            session = ort.InferenceSession(
                str(model_file), options, providers=["CPUExecutionProvider"]
            )
        except Exception as e:  # ORT raises its own untyped errors for unreadable models
            if profile_dir is not None:
                profile_dir.cleanup()
            raise BundleError(
                f"ONNX Runtime cannot load {model_file}: {one_line(e, 300)}. The "
                "file is not a valid model although it passed the bundle's hash check: the "
                "bundle was built from a broken file or edited with its manifest. Rebuild it "
                "with `frugal deploy`.") from e
        return OnnxRuntimeSession(session, profile_dir)
