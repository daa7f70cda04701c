"""OpenVINO on CPU: reads the bundle's ONNX (or IR) and runs it through a pool of requests.

A compiled model is shared; each concurrent ``run`` takes an idle infer request from a pool
(created on demand), so many threads can call one session without sharing a request.
"""

from __future__ import annotations

import os
import queue
import threading
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from frugalml.errors import BundleError, TargetError
from frugalml.runtime.backends._protocol import OpEvent
from frugalml.runtime.backends.onnxruntime import OPTIMIZATION_HINT, SPINNING_HINT
from frugalml.runtime.capabilities import PRECISION_OF_HINT


class OpenVinoSession:
    """A ``CompiledModel`` plus a pool of ``InferRequest``s; outputs by tensor name."""

    def __init__(self, compiled: Any, profile: bool, names: list[str] | None = None) -> None:
        self._compiled = compiled
        # Outputs keep the model file's names: compiling can add aliases (an FP16 IR's output
        # became {"graph_output_cast_0", "output"}), and get_any_name may pick the alias.
        names = names or [o.get_any_name() for o in compiled.outputs]
        self._outputs = list(zip(names, compiled.outputs, strict=True))
        self._idle: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._profile = profile
        self._lock = threading.Lock()
        self._totals: dict[tuple[str, str, str], list[float]] = defaultdict(lambda: [0.0, 0])
        # Read back, never assumed: OpenVINO's CPU default is bf16 on AMX/AVX512-BF16 CPUs.
        kind = compiled.get_property("INFERENCE_PRECISION_HINT").to_string()
        self.inference_precision: str | None = PRECISION_OF_HINT.get(kind, kind)

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run once on an idle request; outputs are copies the caller owns."""
        try:
            request = self._idle.get_nowait()
        except queue.Empty:
            request = self._compiled.create_infer_request()
        try:
            result = request.infer(dict(feeds))
            outputs = {name: np.array(result[port]) for name, port in self._outputs}
            if self._profile:
                self._collect(request)
        finally:
            self._idle.put(request)
        return outputs

    def _collect(self, request: Any) -> None:
        with self._lock:
            for info in request.get_profiling_info():
                if info.status.name != "EXECUTED":
                    continue
                entry = self._totals[(info.node_name, info.node_type, info.exec_type)]
                entry[0] += info.real_time.total_seconds() * 1e6
                entry[1] += 1

    def op_events(self) -> list[OpEvent]:
        """Per-node times from OpenVINO's performance counters.

        Raises:
            BundleError: the session was not opened with ``profile=True``.
        """
        if not self._profile:
            raise BundleError("Per-op times need a session opened with profile=True.")
        with self._lock:
            return [OpEvent(node=n, op_type=t, exec_type=e, total_us=us, calls=int(c))
                    for (n, t, e), (us, c) in self._totals.items()]

    def close(self) -> None:
        """Drop the requests and the compiled model."""
        while not self._idle.empty():
            self._idle.get_nowait()
        self._compiled = None


PRECISION_HINT = "INFERENCE_PRECISION_HINT"

# Hints that only ONNX Runtime understands (OpenVINO refuses unknown properties).
_ONNXRUNTIME_HINTS = frozenset({OPTIMIZATION_HINT, SPINNING_HINT})


def _cache_dir(hint: str) -> str:
    """The compiled-model cache a bundle asks for (``~`` expanded), or "" when it cannot be
    created (a read-only home): the model then compiles at every load, as without the hint."""
    path = os.path.expanduser(hint)
    try:
        os.makedirs(path, exist_ok=True)
    except OSError:
        return ""
    return path


class OpenVinoBackend:
    """Compiles ``.onnx`` or ``.xml`` models for OpenVINO's CPU plugin."""

    name = "openvino"
    module = "openvino"

    def open(self, model_file: Path, *, threads: int, streams: int = 1,
             profile: bool = False, device: str = "CPU",
             hints: Mapping[str, str] | None = None) -> OpenVinoSession:
        """Compile for ``device`` with the latency hint (throughput hint when ``streams`` > 1)
        and the target's ``hints``.

        Raises:
            BundleError: OpenVINO cannot read or compile the file.
            TargetError: OpenVINO does not see ``device`` (for GPU: no Intel GPU, or no
                compute runtime for it).
        """
        import openvino as ov

        core = ov.Core()
        if device not in core.available_devices:
            advice = (" The igpu target needs an Intel GPU (a /dev/dri/renderD* node) and its "
                      "compute runtime (intel-opencl-icd, which provides libOpenCL.so.1); run "
                      "a CPU bundle here instead (see `frugal targets`)." if device == "GPU"
                      else "")
            raise TargetError(f"OpenVINO sees devices {core.available_devices}, not "
                              f"{device}.{advice}")
        config: dict[str, Any] = {
            "PERFORMANCE_HINT": "LATENCY" if streams <= 1 else "THROUGHPUT",
            "NUM_STREAMS": str(max(streams, 1)),
            "PERF_COUNT": profile,
            # OpenVINO's CPU default is f16 on ARM and bf16 on AMX/AVX512-BF16 CPUs: a bundle
            # runs at f32 unless its manifest asks for the precision it was verified at.
            **({PRECISION_HINT: "f32"} if device == "CPU" else {}),
            **{k: v for k, v in (hints or {}).items() if k not in _ONNXRUNTIME_HINTS},
        }
        if threads and device == "CPU":
            config["INFERENCE_NUM_THREADS"] = threads
        if "CACHE_DIR" in config:
            config["CACHE_DIR"] = _cache_dir(str(config["CACHE_DIR"]))
            if not config["CACHE_DIR"]:
                del config["CACHE_DIR"]
        try:
            model = core.read_model(str(model_file))
            names = [o.get_any_name() for o in model.outputs]
            compiled = core.compile_model(model, device, config)
        except Exception as e:  # OpenVINO raises RuntimeError subclasses without a common base
            raise BundleError(f"OpenVINO cannot compile {model_file}: {str(e)[:400]}") from e
        return OpenVinoSession(compiled, profile, names)
