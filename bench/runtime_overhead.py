"""Our ``Model.run`` against the raw backend call on the same bundle, in one process.

Usage: python bench/runtime_overhead.py BUNDLE [--backend onnxruntime|openvino] [--json PATH]
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
from frugalml.runtime.speed import Plan, calls_per_round, compare, round_timer


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
    """Judge the raw call (baseline) against the wrapped one by the speed protocol."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--backend", default="onnxruntime", choices=("onnxruntime", "openvino"))
    parser.add_argument("--time-cap", type=float, default=60.0,
                        help="seconds the speed protocol may take")
    add_json_option(parser)
    args = parser.parse_args()
    model = load(args.bundle, backend=args.backend)
    raw = _raw_call(args.bundle, args.backend, model.manifest.model_file)
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
         json_path=args.json, verdict=v.to_dict())


if __name__ == "__main__":
    main()
