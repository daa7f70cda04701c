"""The quantize stage's table: model x recipe x backend -> metric, delta vs FP32, size, time.

EfficientNet-Lite0: 200 ImageNet-sample images calibrate, the other 800 score (top-1 vs labels,
agreement with FP32). all-MiniLM-L6-v2: 300 Rotten Tomatoes reviews calibrate, 600 others
score (embedding cosine, probe accuracy). All on this host, for the x86-avx2 target format
unless the host has VNNI. Quantization time is wall time of the backend call.

Usage: python bench/quantize_table.py [--quick] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.realdata


def _effnet(root: Path) -> tuple[Path, Any]:
    from frugalml.calibration import ImageFolder, make_set
    from frugalml.export import GraphSpec, export
    from tests.realdata import IMAGENET, efficientnet_lite0, imagenet_batch

    x, _ = imagenet_batch(4)
    record = export(efficientnet_lite0(), root / "effnet", example={"image": x[:2]},
                    spec=GraphSpec(("image",), ("logits",), {"image": {0: "batch"}}),
                    validation=[{"image": x}])
    return record.path, make_set(ImageFolder(IMAGENET, preset="tflite", input_name="image"),
                                 calibration_size=200)


def _minilm(root: Path) -> tuple[Path, Any]:
    from frugalml.calibration import build_text_set, rotten_tomatoes_file
    from frugalml.demo import default_model_dir
    from frugalml.export.huggingface import INPUT_NAMES, export_sentence_encoder

    data = build_text_set(rotten_tomatoes_file(), default_model_dir(), input_names=INPUT_NAMES,
                          calibration_size=300)
    path = root / "minilm" / "model.onnx"
    path.parent.mkdir()
    export_sentence_encoder(default_model_dir(), path,
                            [i.text for i in data.items("calibration", limit=8)])
    return path, data


# (model, backend, format, recipe name, recipe options)
ROWS = [
    ("EfficientNet-Lite0", "onnxruntime", "onnx", "int8", {"calibration_items": 200}),
    ("EfficientNet-Lite0", "nncf", "onnx", "int8", {"calibration_items": 200}),
    ("EfficientNet-Lite0", "nncf", "openvino", "int8", {"calibration_items": 200}),
    ("all-MiniLM-L6-v2", "onnxruntime", "onnx", "int8", {}),
    ("all-MiniLM-L6-v2", "nncf", "onnx", "int8", {}),
    ("all-MiniLM-L6-v2", "onnxruntime", "onnx", "w4a8",
     {"group_size": 32, "weight_symmetric": False}),
    ("all-MiniLM-L6-v2", "nncf", "openvino", "w4a8",
     {"group_size": 32, "weight_symmetric": False, "weight_methods": ("awq",
                                                                       "scale_estimation")}),
]


def main() -> None:
    """Quantize and score every row, print one table, optionally write JSON."""
    from frugalml.quantize.api import model_bytes, quantize
    from frugalml.quantize.recipe import get_recipe
    from frugalml.runtime.host import read_host

    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer evaluation items")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="quantize-table-"))
    models = {"EfficientNet-Lite0": _effnet(root), "all-MiniLM-L6-v2": _minilm(root)}
    host = read_host()
    target = "x86-avx512" if {"avx512_vnni", "avx_vnni"} & set(host.flags) else "x86-avx2"
    print(f"host: {host.cpu_model}, {host.logical_cores} cores, target format of {target}")
    print("| model | recipe | backend | format | metric FP32 -> quantized | delta | "
          "agreement / cosine | size vs FP32 | quantize s | budget |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    for i, (name, backend, fmt, recipe, options) in enumerate(ROWS):
        model, data = models[name]
        items = (200 if args.quick else 800) if "Efficient" in name else (
            200 if args.quick else 600)
        record = quantize(model, data, root / f"row{i}", recipe=get_recipe(recipe, **options),
                          backend=backend, output_format=fmt, target=target,
                          eval_items=items, allow_over_budget=True)
        acc = record.accuracy
        metric = next(iter(acc["reference"]))
        delta = next(v for k, v in acc["candidate"].items() if k.endswith("_drop_points"))
        second = acc["candidate"].get("top1_agreement_with_fp32",
                                      acc["candidate"]["mean_cosine_to_fp32"])
        ratio = record.size_bytes / model_bytes(model)
        print(f"| {name} | {recipe} | {backend} | {fmt} | {metric} "
              f"{acc['reference'][metric]:.4f} -> {acc['candidate'][metric]:.4f} | "
              f"{-delta:+.2f} pt | {second:.4f} | {ratio:.3f} | {record.seconds:.0f} | "
              f"{'met' if acc['within_budget'] else 'MISSED'} |", flush=True)
        rows.append({"model": name, "recipe": recipe, "backend": backend, "format": fmt,
                     "items": acc["items"], "record": record.to_dict(), "size_ratio": ratio})
    if args.json:
        args.json.write_text(json.dumps({"host": host.to_dict(), "rows": rows}, indent=2,
                                        default=str))


if __name__ == "__main__":
    main()
