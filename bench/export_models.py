"""Export the real models of ../shared/DATA.md and print each one's export time and size.

Usage: python bench/export_models.py [OUT_DIR] [--json PATH]
Times include validation against torch on real inputs (and onnxslim's check); one run on this
host, so compare them with each other rather than across machines.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from _data import efficientnet_lite0, imagenet_batch, mnist_batch, mnist_net
from _report import add_json_option, emit

from frugalml.demo import default_model_dir
from frugalml.export import GraphSpec, export

IMAGE = GraphSpec(("image",), ("logits",), {"image": {0: "batch"}})


def main() -> None:
    """Run each export once and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, nargs="?", help="folder for the exports "
                        "(default: a new temporary folder)")
    add_json_option(parser)
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="exports-"))
    images, _ = imagenet_batch(9)
    digits, _ = mnist_batch(64)
    jobs = {
        "EfficientNet-Lite0 -> ONNX": lambda d: export(
            efficientnet_lite0(), d, example={"image": images[:2]}, spec=IMAGE,
            validation=[{"image": images[1:9]}]),
        "EfficientNet-Lite0 -> IR (FP32)": lambda d: export(
            efficientnet_lite0(), d, format="openvino", example={"image": images[:2]},
            spec=IMAGE, validation=[{"image": images[1:9]}]),
        "all-MiniLM-L6-v2 -> ONNX": lambda d: export(default_model_dir(), d),
        "MNIST CNN -> IR (FP16)": lambda d: export(
            mnist_net(), d, format="openvino", fp16=True, example={"image": digits[:4]},
            spec=IMAGE, validation=[{"image": digits}]),
    }
    rows = []
    for i, (name, job) in enumerate(jobs.items()):
        record = job(out / f"m{i}")
        rows.append({"model": name, "exporter": record.exporter.split(" ")[0],
                     "seconds": round(record.seconds, 1),
                     "size (MB)": round(record.size_bytes / 1e6, 2),
                     "max abs error": max(c.max_abs_error for c in record.checks),
                     "min cosine": f"{min(c.min_cosine for c in record.checks):.7f}"})
        print(f"{name}: {record.seconds:.1f} s", file=sys.stderr, flush=True)
    emit("exports of the real models", tuple(rows[0]), rows, json_path=args.json)


if __name__ == "__main__":
    main()
