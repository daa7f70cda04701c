"""The speed gate on real models: `compile` FP32 + INT8 bundles for this host's target and print
the gate's verdict (interleaved rounds in one process, batch 1, 1 thread).

EfficientNet-Lite0 (200 ImageNet-sample images calibrate) and all-MiniLM-L6-v2 (300 Rotten
Tomatoes reviews calibrate), both quantized with ONNX Runtime static INT8 in the target's format.

Usage: python bench/compile_gate.py [--time-cap 60] [--threads 1]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.realdata and bench


def main() -> None:
    """Build, gate and print one line per model."""
    from bench.quantize_table import _effnet, _minilm
    from frugalml.quantize.api import quantize
    from frugalml.runtime.host import describe_host, read_host
    from frugalml.runtime.speed import Plan as SpeedPlan
    from frugalml.targets.compile import compile_model
    from frugalml.targets.detect import detect

    parser = argparse.ArgumentParser()
    parser.add_argument("--time-cap", type=float, default=60.0,
                        help="seconds the speed protocol may take per model")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="compile-gate-"))
    host, target = read_host(), detect()
    print(f"host: {describe_host(host.to_dict())}, {host.logical_cores} cores; "
          f"target {target.name}")
    for name, build in (("EfficientNet-Lite0", _effnet), ("all-MiniLM-L6-v2", _minilm)):
        model, data = build(root)
        q = quantize(model, data, root / f"{name}-int8", recipe="int8", target=target,
                     eval_items=200)
        samples = next(data.batches("evaluation", batch_size=1))[0]
        result = compile_model(q.path.parent, root / f"{name}-bundles", target=target,
                               samples=samples, fp32=model, name=name, threads=args.threads,
                               gate_plan=SpeedPlan(time_cap_s=args.time_cap))
        gate = result.speed_gate or {}
        print(f"{name}: default {result.default}; {gate.get('why', 'gate not run')} "
              f"(FP32 p50 {gate.get('baseline_p50_ms')} ms, INT8 "
              f"{gate.get('candidate_p50_ms')} ms)", flush=True)


if __name__ == "__main__":
    main()
