"""Export the real models of ../shared/DATA.md and print each one's export time and size.

Usage: python bench/export_models.py [OUT_DIR]
Times include validation against torch on real inputs (and onnxslim's check); one run on this
host, so compare them with each other rather than across machines.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.realdata

from frugalml.demo import default_model_dir  # noqa: E402
from frugalml.export import GraphSpec, export  # noqa: E402
from frugalml.runtime.host import read_host  # noqa: E402
from tests.realdata import (  # noqa: E402
    efficientnet_lite0,
    imagenet_batch,
    mnist_batch,
    mnist_net,
)

IMAGE = GraphSpec(("image",), ("logits",), {"image": {0: "batch"}})


def main() -> None:
    """Run each export once and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, nargs="?", help="folder for the exports "
                        "(default: a new temporary folder)")
    out = parser.parse_args().out or Path(tempfile.mkdtemp(prefix="exports-"))
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
    host = read_host()
    print(f"host: {host.cpu_model}, {host.logical_cores} logical cores")
    print("| model | exporter | seconds | size (MB) | max abs error | min cosine |")
    print("|---|---|---:|---:|---:|---:|")
    for i, (name, job) in enumerate(jobs.items()):
        record = job(out / f"m{i}")
        print(f"| {name} | {record.exporter.split(' ')[0]} | {record.seconds:.1f} | "
              f"{record.size_bytes / 1e6:.2f} | "
              f"{max(c.max_abs_error for c in record.checks):.2g} | "
              f"{min(c.min_cosine for c in record.checks):.7f} |", flush=True)


if __name__ == "__main__":
    main()
