"""Cold start of an OpenVINO CPU bundle with and without its compiled-model cache.

`frugal compile --backend openvino` bundles ask OpenVINO to keep the compiled model under
~/.cache/frugalml/openvino; each later process imports it instead of compiling. This prints
load time (hash check + compile or import) of fresh processes: the first with an empty cache,
then with the cache filled, for EfficientNet-Lite0 FP32 and INT8 (ONNX Runtime QDQ, which
OpenVINO reads as its own INT8).

Usage: python bench/ov_compile_cache.py [--processes 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.realdata and bench

_LOAD = ("import json, sys\nfrom frugalml import runtime\n"
         "with runtime.load(sys.argv[1], threads=1) as m:\n"
         "    print(json.dumps(m.load_ms))\n")


def _load_ms(bundle: Path, home: Path) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-c", _LOAD, str(bundle)], capture_output=True,
                          text=True, check=True, env={**os.environ, "HOME": str(home)})
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    """Compile the bundles, then time loads in fresh processes."""
    from bench.quantize_table import _effnet
    from frugalml.quantize.api import quantize
    from frugalml.runtime.host import read_host
    from frugalml.targets.compile import compile_model
    from frugalml.targets.detect import detect

    parser = argparse.ArgumentParser()
    parser.add_argument("--processes", type=int, default=5)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="ov-cache-"))
    host, target = read_host(), detect()
    print(f"host: {host.cpu_model}, {host.logical_cores} cores; target {target.name}")
    model, data = _effnet(root)
    q = quantize(model, data, root / "int8", recipe="int8", target=target, eval_items=100,
                 allow_over_budget=True)
    samples = next(data.batches("evaluation", batch_size=1))[0]
    result = compile_model(q.path.parent, root / "bundles", target=target, samples=samples,
                           fp32=model, name="effnet", backend="openvino", gate_rounds=1,
                           gate_runs=1, host=host)
    for precision, bundle in result.bundles.items():
        home = root / f"home-{precision}"
        first = _load_ms(Path(bundle), home)
        later = [_load_ms(Path(bundle), home) for _ in range(args.processes)]
        warm = statistics.median(x["compile"] for x in later)
        print(f"EfficientNet-Lite0 {precision}: compile {first['compile']:.0f} ms with an "
              f"empty cache, {warm:.0f} ms from the cache (median of {args.processes} fresh "
              f"processes): {first['compile'] / warm:.1f}x faster load", flush=True)


if __name__ == "__main__":
    main()
