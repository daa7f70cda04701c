"""Our ``Model.run`` against the raw backend call on the same bundle, in one process.

Usage: python bench/runtime_overhead.py BUNDLE [--backend onnxruntime|openvino] [--runs N]
The two calls alternate run by run on the same inputs, so drift on a shared machine hits both
alike; the ratio of p50s is the wrapper's overhead (input checks, contiguity, output dict).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from frugalml.runtime import load, read_host
from frugalml.runtime.bench_inputs import bench_feeds


def _raw_call(bundle: Path, backend: str, model_file: str) -> Any:
    """The plain backend call an app would write without frugalml."""
    if backend == "openvino":
        import openvino as ov

        compiled = ov.Core().compile_model(str(bundle / model_file), "CPU",
                                           {"PERFORMANCE_HINT": "LATENCY"})
        request = compiled.create_infer_request()
        return lambda feeds: request.infer(feeds)
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(bundle / model_file), options,
                                   providers=["CPUExecutionProvider"])
    return lambda feeds: session.run(None, feeds)


def main() -> None:
    """Alternate the wrapped and the raw call and print p50s and their ratio."""
    parser = argparse.ArgumentParser()
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--backend", default="onnxruntime", choices=("onnxruntime", "openvino"))
    parser.add_argument("--runs", type=int, default=1000)
    args = parser.parse_args()
    model = load(args.bundle, backend=args.backend)
    raw = _raw_call(args.bundle, args.backend, model.manifest.model_file)
    feeds = bench_feeds(model)
    times: dict[str, list[float]] = {"frugalml": [], "raw": []}
    calls = {"frugalml": model.run, "raw": raw}
    for i in range(50):  # warm-up both
        for call in calls.values():
            call(feeds[i % len(feeds)])
    for i in range(args.runs):
        order = ("frugalml", "raw") if i % 2 else ("raw", "frugalml")
        for name in order:
            start = time.perf_counter()
            calls[name](feeds[i % len(feeds)])
            times[name].append(time.perf_counter() - start)
    p50 = {name: float(np.percentile(t, 50)) * 1e3 for name, t in times.items()}
    host = read_host()
    print(f"{model.manifest.name} on {args.backend}, {host.cpu_model} "
          f"({host.logical_cores} logical cores), {args.runs} alternating runs")
    print(f"p50 frugalml {p50['frugalml']:.3f} ms, raw {p50['raw']:.3f} ms, "
          f"overhead {p50['frugalml'] / p50['raw'] - 1:+.2%}")


if __name__ == "__main__":
    main()
