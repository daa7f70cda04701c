"""The quantize stage's table: model x recipe x backend -> metric, delta vs FP32, size, time.

EfficientNet-Lite0: 200 ImageNet-sample images calibrate, the other 800 score (top-1 vs labels,
agreement with FP32). all-MiniLM-L6-v2: 300 Rotten Tomatoes reviews calibrate, 600 others
score (embedding cosine, probe accuracy). All on this host, for the x86-avx2 target format
unless the host has VNNI. Quantization time is wall time of the backend call.

SmolLM2-135M (from its GGUF): 64 windows of 128 tiny-shakespeare tokens calibrate, 64 others
score (perplexity); 4-bit g128 symmetric (576-wide inputs fall back to g64).

Usage: python bench/quantize_table.py [--quick] [--json out.json] [--models A,B]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from _data import MODEL_SETS
from _report import accuracy_cells, add_json_option, emit

_G128 = {"group_size": 128, "weight_symmetric": True, "calibration_items": 64}

# (model, backend, format, recipe name, recipe options)
ROWS = [
    ("EfficientNet-Lite0", "onnxruntime", "onnx", "int8", {"calibration_items": 200}),
    ("EfficientNet-Lite0", "nncf", "onnx", "int8", {"calibration_items": 200}),
    ("EfficientNet-Lite0", "nncf", "openvino", "int8", {"calibration_items": 200}),
    ("all-MiniLM-L6-v2", "onnxruntime", "onnx", "int8", {}),
    ("all-MiniLM-L6-v2", "onnxruntime", "onnx", "int8-dynamic", {}),
    ("all-MiniLM-L6-v2", "nncf", "onnx", "int8", {}),
    ("all-MiniLM-L6-v2", "onnxruntime", "onnx", "w4a8",
     {"group_size": 32, "weight_symmetric": False}),
    ("all-MiniLM-L6-v2", "nncf", "openvino", "w4a8",
     {"group_size": 32, "weight_symmetric": False, "weight_methods": ("awq",
                                                                       "scale_estimation")}),
    ("SmolLM2-135M", "nncf", "openvino", "w4a8",
     {**_G128, "weight_methods": ("awq", "scale_estimation")}),
    ("SmolLM2-135M", "nncf", "openvino", "w4a8", _G128),
    ("SmolLM2-135M", "onnxruntime", "onnx", "w4a8", _G128),
]
_ITEMS = {"EfficientNet-Lite0": (200, 800), "all-MiniLM-L6-v2": (200, 600),
          "SmolLM2-135M": (16, 64)}  # (--quick, full); SmolLM2: 128-token windows


COLUMNS = ("model", "recipe", "backend", "format", "metric FP32 -> quantized", "delta",
           "agreement / cosine", "size vs FP32", "quantize s", "budget")


def main() -> None:
    """Quantize and score every row, print one table, optionally write JSON."""
    from frugalml.quantize.api import model_bytes, quantize
    from frugalml.quantize.recipe import get_recipe
    from frugalml.runtime.host import read_host

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer evaluation items")
    parser.add_argument("--models", default=",".join(MODEL_SETS),
                        help=f"comma-separated subset of {', '.join(MODEL_SETS)}")
    add_json_option(parser)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="quantize-table-"))
    models = {name: MODEL_SETS[name](root) for name in args.models.split(",")}
    flags = set(read_host().flags)
    target = "x86-avx512" if {"avx512_vnni", "avx_vnni"} & flags else "x86-avx2"
    rows, records = [], []
    for i, (name, backend, fmt, recipe, options) in enumerate(ROWS):
        if name not in models:
            continue
        model, data = models[name]
        items = _ITEMS[name][0 if args.quick else 1]
        record = quantize(model, data, root / f"row{i}", recipe=get_recipe(recipe, **options),
                          backend=backend, output_format=fmt, target=target,
                          eval_items=items, allow_over_budget=True)
        acc = record.accuracy
        metric, delta, second = (c.strip() for c in accuracy_cells(acc).split("|"))
        rows.append({"model": name, "recipe": _label(recipe, options), "backend": backend,
                     "format": fmt, "metric FP32 -> quantized": metric, "delta": delta,
                     "agreement / cosine": second,
                     "size vs FP32": round(record.size_bytes / model_bytes(model), 3),
                     "quantize s": round(record.seconds), "budget":
                     "met" if acc["within_budget"] else "MISSED"})
        records.append(record.to_dict())
        print(f"{name} {rows[-1]['recipe']} {backend}/{fmt}: {metric}", file=sys.stderr)
    emit(f"quantize table (target format of {target})", COLUMNS, rows, json_path=args.json,
         records=records)


def _label(recipe: str, options: dict[str, Any]) -> str:
    if recipe != "w4a8":
        return recipe
    sym = "sym" if options.get("weight_symmetric", True) else "asym"
    methods = "+".join(options.get("weight_methods", ())) or "rounding"
    return f"w4a8 g{options.get('group_size', 128)} {sym} {methods}"


if __name__ == "__main__":
    main()
