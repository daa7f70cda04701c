"""Is the bundle deploy shipped at least as fast as the FP32 model run by OpenVINO at its own
default precision? Timed independently of deploy, by the speed protocol, at a workload.

OpenVINO's CPU plugin runs an FP32 model at bf16 by default on AMX / AVX512-BF16 CPUs and at
f32 elsewhere; a user who skips frugalml gets that. The baseline here is
``compile_model(fp32_model, "CPU")`` with only the latency hint and the thread count set, its
inference precision read back and printed.

Usage: python bench/against_openvino_default.py BUNDLE FP32_MODEL [--threads 1] [--batch 8]
       [--sequence-length 128] [--time-cap 60] [--json out.json]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _report import add_json_option, emit


def main() -> None:
    """Print a Markdown table naming the host; write it as JSON with --json."""
    import openvino as ov

    from frugalml import runtime
    from frugalml.runtime.bench_inputs import bench_feeds, sample_arrays
    from frugalml.runtime.speed import Plan, calls_per_round, compare, round_timer
    from frugalml.runtime.workload import Workload, workload_feeds

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle", type=Path, help="the shipped bundle (frugal deploy)")
    parser.add_argument("fp32_model", type=Path, help="the FP32 .onnx (or .xml) it came from")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--sequence-length", type=int)
    parser.add_argument("--time-cap", type=float, default=60.0)
    add_json_option(parser)
    args = parser.parse_args()

    workload = Workload(batch=args.batch, sequence_length=args.sequence_length)
    core = ov.Core()
    baseline = core.compile_model(str(args.fp32_model), "CPU", {
        "PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": args.threads})
    default_precision = baseline.get_property("INFERENCE_PRECISION_HINT").to_string()
    request = baseline.create_infer_request()
    with runtime.load(args.bundle, threads=args.threads, hints={"ALLOW_SPINNING": "0"}) as model:
        feeds = (bench_feeds(model, "samples", batch=1)[0] if workload.is_default else
                 workload_feeds(sample_arrays(model), model.manifest.inputs, workload))
        runs = [lambda: request.infer(feeds), lambda: model.run(feeds)]
        calls = max(calls_per_round(r, 0.25) for r in runs)
        verdict = compare(*(round_timer(r, calls) for r in runs),
                          plan=Plan(time_cap_s=args.time_cap), settings={
                              "threads": args.threads, "workload": workload.to_dict(),
                              "input_shapes": {k: list(v.shape) for k, v in feeds.items()}})
        shipped = {"precision": model.manifest.precision, "backend": model.backend,
                   "inference_precision": model.inference_precision}
    rows = [{"shipped bundle": args.bundle.name,
             "its precision": f"{shipped['precision']} ({shipped['backend']})",
             "baseline": f"OpenVINO {ov.__version__} default ({default_precision})",
             "x baseline": verdict.describe(short=True)}]
    emit(f"a shipped bundle against OpenVINO's default precision, {workload.describe()}",
         tuple(rows[0]), rows, json_path=args.json, threads=args.threads,
         bundle=str(args.bundle), shipped=shipped, workload=workload.describe(),
         verdict=verdict.to_dict())


if __name__ == "__main__":
    main()
