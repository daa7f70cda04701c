"""Soak the runtime: 8 threads x 10,000 calls on one loaded bundle, per backend, with RSS
measured after warm-up and at the end (goal: growth < 5 %, zero errors, every output equal to
the single-threaded answer).

Usage: python bench/soak.py [BUNDLE] [--threads 8] [--calls 10000]
       [--backends onnxruntime,openvino] [--json PATH]
Without BUNDLE, the MNIST CNN (real digits) is exported and bundled into a temp dir: it is
small enough (~0.2 ms a call) for 80,000 calls per backend to take about a minute.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _data import build_mnist_bundle, mnist_batch
from _report import add_json_option, emit
from _soak import soak

from frugalml.runtime import load


def _inputs(bundle: Path, count: int) -> list:
    """Real digits for the MNIST bundle; otherwise the bundle's own sample rows."""
    import numpy as np

    with np.load(bundle / "samples.npz", allow_pickle=False) as data:
        feeds = {k.removeprefix("input."): data[k] for k in data.files if k.startswith("input.")}
    if list(feeds) == ["image"] and feeds["image"].shape[1:] == (1, 28, 28):
        digits, _ = mnist_batch(count)
        return [{"image": digits[i:i + 1]} for i in range(count)]
    rows = len(next(iter(feeds.values())))
    return [{k: v[i:i + 1] for k, v in feeds.items()} for i in range(rows)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path, nargs="?")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--calls", type=int, default=10_000, help="calls per thread")
    parser.add_argument("--backends", default="onnxruntime,openvino")
    add_json_option(parser)
    args = parser.parse_args()
    bundle = args.bundle or build_mnist_bundle(Path(tempfile.mkdtemp(prefix="soak-")))
    inputs = _inputs(bundle, args.threads * 4)
    rows = []
    for backend in args.backends.split(","):
        with load(bundle, backend=backend, threads=1, streams=2) as model:
            r = soak(model, inputs, threads=args.threads, calls=args.calls)
        rows.append({"backend": backend, "threads": r.threads, "calls": r.calls,
                     "errors": r.errors, "mismatches": r.mismatches,
                     "rss_start_mib": round(r.rss_start_mib, 1),
                     "rss_end_mib": round(r.rss_end_mib, 1),
                     "rss_growth_pct": round(100 * r.rss_growth, 2),
                     "calls_per_s": round(r.calls_per_s), "seconds": round(r.seconds, 1)})
    for r in rows:
        r["threads x calls"] = f"{r['threads']} x {r['calls'] // r['threads']}"
    emit(f"runtime soak of {bundle}", ("backend", "threads x calls", "errors", "mismatches",
                                       "rss_start_mib", "rss_end_mib", "rss_growth_pct",
                                       "calls_per_s"), rows, json_path=args.json,
         bundle=str(bundle))


if __name__ == "__main__":
    main()
