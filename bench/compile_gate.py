"""The speed gate on real models: `compile` FP32 + INT8 bundles for this host's target and print
the gate's verdict (interleaved rounds in one process, batch 1, 1 thread).

EfficientNet-Lite0 (200 ImageNet-sample images calibrate) and all-MiniLM-L6-v2 (300 Rotten
Tomatoes reviews calibrate), both quantized with ONNX Runtime static INT8 in the target's format.

Usage: python bench/compile_gate.py [--time-cap 60] [--threads 1] [--json PATH]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from _report import add_json_option, emit


def main() -> None:
    """Build, gate and print one line per model."""
    from _data import effnet_set, minilm_set

    from frugalml.quantize.api import quantize
    from frugalml.runtime.speed import Plan as SpeedPlan
    from frugalml.targets.compile import compile_model
    from frugalml.targets.detect import detect

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--time-cap", type=float, default=60.0,
                        help="seconds the speed protocol may take per model")
    parser.add_argument("--threads", type=int, default=1)
    add_json_option(parser)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="compile-gate-"))
    target = detect()
    rows = []
    for name, build in (("EfficientNet-Lite0", effnet_set), ("all-MiniLM-L6-v2", minilm_set)):
        model, data = build(root)
        q = quantize(model, data, root / f"{name}-int8", recipe="int8", target=target,
                     eval_items=200)
        samples = next(data.batches("evaluation", batch_size=1))[0]
        result = compile_model(q.path.parent, root / f"{name}-bundles", target=target,
                               samples=samples, fp32=model, name=name, threads=args.threads,
                               gate_plan=SpeedPlan(time_cap_s=args.time_cap))
        gate = result.speed_gate or {}
        rows.append({"model": name, "default bundle": result.default,
                     "FP32 p50 ms": gate.get("baseline_p50_ms"),
                     "INT8 p50 ms": gate.get("candidate_p50_ms"),
                     "gate": gate.get("why", "gate not run")})
        print(f"{name}: default {result.default}", file=sys.stderr, flush=True)
    emit(f"speed gate on target {target.name}", tuple(rows[0]), rows, json_path=args.json,
         threads=args.threads)


if __name__ == "__main__":
    main()
