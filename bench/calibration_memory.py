"""Peak RSS of INT8 calibration (ONNX Runtime MinMax) on N ImageNet images, streamed.

Usage: python bench/calibration_memory.py N [N ...]
Each N runs in a fresh process: EfficientNet-Lite0 is exported once, then ONNX Runtime's static
quantizer calibrates Conv/MatMul/Gemm on the first N items of an image folder read through
frugalml's CalibrationSet (the 1,000 sample images linked under N/1000 names), merging ranges
every 16 items as frugalml's quantizer does (StreamingReader). Prints N, seconds and peak RSS
as a table naming the host (``--json PATH`` writes it too).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _report import add_json_option, emit

CHILD = """
import sys, time
from pathlib import Path
from onnxruntime import quantization as q
from frugalml.calibration import ImageFolder, make_set
folder, model, n = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
data = make_set(ImageFolder(folder, preset="tflite", labels=None, input_name="image"),
                calibration_size=n)
from frugalml.quantize.onnxruntime import MERGE_EVERY, StreamingReader
items = (f for f, _ in data.batches("calibration", batch_size=1))
start = time.perf_counter()
q.quantize_static(model, str(Path(model).with_name(f"int8-{n}.onnx")), StreamingReader(items),
                  quant_format=q.QuantFormat.QDQ, per_channel=True,
                  op_types_to_quantize=["Conv", "MatMul", "Gemm"],
                  extra_options={"CalibMaxIntermediateOutputs": MERGE_EVERY})
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
print(n, round(time.perf_counter() - start, 1), round(hwm / 1024))
"""


def main() -> None:
    """Export once, link the images, then calibrate each N in its own process."""
    from _data import IMAGENET, efficientnet_lite0, imagenet_batch

    from frugalml.export import GraphSpec, export

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sizes", type=int, nargs="*", default=[100, 5000],
                        help="calibration set sizes, each calibrated in its own process")
    add_json_option(parser)
    args = parser.parse_args()
    sizes = args.sizes
    root = Path(tempfile.mkdtemp(prefix="calmem-"))
    images, _ = imagenet_batch(4)
    record = export(efficientnet_lite0(), root / "export", example={"image": images[:2]},
                    spec=GraphSpec(("image",), ("logits",), {"image": {0: "batch"}}),
                    validation=[{"image": images[2:]}])
    folder = root / "images"
    folder.mkdir()
    names = sorted(p.name for p in IMAGENET.glob("*.jpg"))
    for copy in range(max(sizes) // len(names) + 1):
        for name in names:
            os.symlink(IMAGENET / name, folder / f"{copy}_{name}")
    rows = []
    for n in sizes:
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", CHILD, str(folder), str(record.path),
                               str(n)], capture_output=True, text=True)
        if done.returncode:
            sys.exit(f"calibration of {n} items failed after {time.perf_counter() - started:.0f} "
                     f"s: {done.stderr[-800:]}")
        items, seconds, peak = done.stdout.split()
        rows.append({"N": int(items), "seconds": float(seconds), "peak RSS MiB": int(peak)})
        print(f"{n} items: {seconds} s, {peak} MiB", file=sys.stderr, flush=True)
    emit("INT8 calibration memory (EfficientNet-Lite0, ONNX Runtime MinMax, streamed)",
         ("N", "seconds", "peak RSS MiB"), rows, json_path=args.json)


if __name__ == "__main__":
    main()
