"""Our ``Model.run`` against the raw backend call on the same bundle, in one process.

Usage: python bench/runtime_overhead.py BUNDLE [--backend onnxruntime|openvino] [--threads 1]
       [--json PATH]
Judged by the speed protocol: rounds of the two calls interleaved, order flipped each round, on
the same inputs, so drift on a shared machine hits both alike; a ratio below 1 is the
wrapper's overhead (input checks, contiguity, output dict).
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path
from typing import Any

from _report import add_json_option, emit

from frugalml.runtime import load
from frugalml.runtime.bench_inputs import bench_feeds
from frugalml.runtime.capabilities import HINT_OF_PRECISION
from frugalml.runtime.speed import Plan, calls_per_round, compare, round_timer


def _raw_call(bundle: Path, backend: str, model_file: str, threads: int,
              inference_precision: str | None) -> Any:
    """The plain backend call an app would write without frugalml, with the settings the
    bundle's session has (threads, no spinning, the verified precision): what differs is
    the wrapper alone. (With ONNX Runtime's own defaults instead, two spinning threads, the
    raw call on the MNIST bundle was 2.4x faster: settings, not wrapper.)"""
    if backend == "openvino":
        import openvino as ov

        config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads}
        if inference_precision:
            config["INFERENCE_PRECISION_HINT"] = HINT_OF_PRECISION[inference_precision]
        request = ov.Core().compile_model(str(bundle / model_file), "CPU",
                                          config).create_infer_request()
        return lambda feeds: request.infer(feeds)
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(bundle / model_file), options,
                                   providers=["CPUExecutionProvider"])
    return lambda feeds: session.run(None, feeds)


def main() -> None:
    """Judge the raw call (baseline) against the wrapped one by the speed protocol."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--backend", default="onnxruntime", choices=("onnxruntime", "openvino"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--time-cap", type=float, default=60.0,
                        help="seconds the speed protocol may take")
    add_json_option(parser)
    args = parser.parse_args()
    model = load(args.bundle, backend=args.backend, threads=args.threads)
    raw = _raw_call(args.bundle, args.backend, model.manifest.model_file, args.threads,
                    model.inference_precision)
    feeds = bench_feeds(model)
    calls = {"frugalml": model.run, "raw": raw}
    turn = {name: itertools.cycle(feeds) for name in calls}
    runs = {name: (lambda c=call, n=name: c(next(turn[n]))) for name, call in calls.items()}
    per_round = calls_per_round(runs["raw"], round_s=0.2)
    v = compare(round_timer(runs["raw"], per_round), round_timer(runs["frugalml"], per_round),
                plan=Plan(time_cap_s=args.time_cap))
    rows = [{"call": "raw backend", "p50 ms": v.baseline_p50_ms, "vs raw": "baseline"},
            {"call": "frugalml Model.run", "p50 ms": v.candidate_p50_ms,
             "vs raw": v.describe(short=True)}]
    emit(f"{model.manifest.name} on {args.backend}: wrapper overhead ({per_round} calls a "
         "round, rounds interleaved)", ("call", "p50 ms", "vs raw"), rows,
         json_path=args.json, threads=args.threads, verdict=v.to_dict())


if __name__ == "__main__":
    main()
