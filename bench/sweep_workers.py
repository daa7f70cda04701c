"""Wall time of one build-heavy sweep on the embedded Ray with 1 worker vs all cores.

Cells: EfficientNet-Lite0 (exported from torch; ImageNet-sample photos calibrate) and PP-OCR's
text-direction classifier (ONNX as shipped; photos in its preprocessing) x two INT8 recipes
(per-channel, per-tensor) x ONNX Runtime, on this host's target. Quantizing EfficientNet
dominates. Each run starts from an empty results folder (nothing reused) in a fresh process.

Usage: python bench/sweep_workers.py [--workers 1,2] [--json PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _report import add_json_option, emit

SPEC = {
    "name": "build-heavy",
    "models": [{"name": "efficientnet-lite0", "model": "effnet.onnx", "data": "cal-effnet"},
               {"name": "ppocr-cls", "model": "ppocr-cls.onnx", "data": "cal-cls"}],
    "recipes": ["int8", {"recipe": "int8", "per_channel": False, "label": "int8-per-tensor"}],
    "backends": ["onnxruntime"],
    "eval_items": 200,
    "bench": {"runs": 50, "warmup": 5},
}


def _prepare(root: Path) -> Path:
    """Models and `frugal calibrate` descriptors in ``root``; returns the spec's path."""
    import numpy as np
    from _data import (
        IMAGENET,
        efficientnet_lite0,
        imagenet_batch,
        ppocr_cls_batch,
        ppocr_cls_model,
    )

    from frugalml.cli import main
    from frugalml.export import GraphSpec, export

    x, _ = imagenet_batch(4)
    record = export(efficientnet_lite0(), root / "effnet-export", example={"image": x[:2]},
                    spec=GraphSpec(("image",), ("logits",), {"image": {0: "batch"}}),
                    validation=[{"image": x}])
    shutil.copy(record.path, root / "effnet.onnx")
    shutil.copy(ppocr_cls_model(), root / "ppocr-cls.onnx")
    np.savez(root / "photos.npz", x=ppocr_cls_batch(400))
    for args in ([str(IMAGENET), "--model", str(root / "effnet.onnx"), "--preset", "tflite",
                  "--num", "200", "--out", str(root / "cal-effnet")],
                 [str(root / "photos.npz"), "--model", str(root / "ppocr-cls.onnx"),
                  "--num", "200", "--out", str(root / "cal-cls")]):
        with contextlib.redirect_stdout(io.StringIO()):
            code = main(["calibrate", *args, "--json"])
        if code != 0:
            raise SystemExit("frugal calibrate failed")
    spec = root / "spec.json"
    spec.write_text(json.dumps(SPEC))
    return spec


def main() -> None:
    """Prepare once, then run the sweep once per worker count and print the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", default=f"1,{os.cpu_count()}")
    add_json_option(parser)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        spec = _prepare(Path(tmp))
        rows = []
        for workers in (int(w) for w in args.workers.split(",")):
            out = Path(tmp) / f"out-{workers}"
            start = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "frugalml.cli", "sweep", str(spec),
                                   "--out", str(out), "--workers", str(workers), "--json"],
                                  capture_output=True, text=True, check=False)
            wall = time.perf_counter() - start
            if done.returncode != 0:
                raise SystemExit(f"sweep with {workers} workers failed:\n{done.stderr[-3000:]}")
            cells = json.loads(done.stdout)["rows"]
            rows.append({"workers": workers, "wall s": round(wall, 1), "cells": len(cells),
                         "statuses": ", ".join(sorted({c["status"] for c in cells}))})
            print(f"{workers} worker(s): {wall:.1f} s", file=sys.stderr, flush=True)
    for row in rows:
        row["x 1 worker"] = f"{rows[0]['wall s'] / row['wall s']:.2f}x"
    emit("frugal sweep wall time by worker count (one run each, not interleaved)",
         ("workers", "wall s", "cells", "statuses", "x 1 worker"), rows, json_path=args.json)


if __name__ == "__main__":
    main()
