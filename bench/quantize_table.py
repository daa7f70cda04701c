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


def _smollm2(root: Path) -> tuple[Path, Any]:
    from frugalml.calibration import TokenWindows, make_set
    from frugalml.export import export
    from frugalml.export.gguf import gguf_model_dir
    from tests.realdata import smollm2_gguf, tiny_shakespeare

    model_dir = gguf_model_dir(smollm2_gguf())
    record = export(model_dir, root / "smollm2", task="text-generation", simplify_graph=False)
    return record.path, make_set(TokenWindows(tiny_shakespeare(), model_dir, window=128),
                                 calibration_size=64)


BUILDERS = {"EfficientNet-Lite0": _effnet, "all-MiniLM-L6-v2": _minilm, "SmolLM2-135M": _smollm2}
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


def main() -> None:
    """Quantize and score every row, print one table, optionally write JSON."""
    from frugalml.quantize.api import model_bytes, quantize
    from frugalml.quantize.recipe import get_recipe
    from frugalml.runtime.host import read_host

    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer evaluation items")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--models", default=",".join(BUILDERS),
                        help=f"comma-separated subset of {', '.join(BUILDERS)}")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="quantize-table-"))
    chosen = args.models.split(",")
    models = {name: BUILDERS[name](root) for name in chosen}
    host = read_host()
    target = "x86-avx512" if {"avx512_vnni", "avx_vnni"} & set(host.flags) else "x86-avx2"
    print(f"host: {host.cpu_model}, {host.logical_cores} cores, target format of {target}")
    print("| model | recipe | backend | format | metric FP32 -> quantized | delta | "
          "agreement / cosine | size vs FP32 | quantize s | budget |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    for i, (name, backend, fmt, recipe, options) in enumerate(ROWS):
        if name not in models:
            continue
        model, data = models[name]
        items = _ITEMS[name][0 if args.quick else 1]
        record = quantize(model, data, root / f"row{i}", recipe=get_recipe(recipe, **options),
                          backend=backend, output_format=fmt, target=target,
                          eval_items=items, allow_over_budget=True)
        acc = record.accuracy
        ratio = record.size_bytes / model_bytes(model)
        print(f"| {name} | {_label(recipe, options)} | {backend} | {fmt} | {_metric(acc)} | "
              f"{ratio:.3f} | {record.seconds:.0f} | "
              f"{'met' if acc['within_budget'] else 'MISSED'} |", flush=True)
        rows.append({"model": name, "recipe": recipe, "backend": backend, "format": fmt,
                     "items": acc["items"], "record": record.to_dict(), "size_ratio": ratio})
    if args.json:
        args.json.write_text(json.dumps({"host": host.to_dict(), "rows": rows}, indent=2,
                                        default=str))


def _label(recipe: str, options: dict[str, Any]) -> str:
    if recipe != "w4a8":
        return recipe
    sym = "sym" if options.get("weight_symmetric", True) else "asym"
    methods = "+".join(options.get("weight_methods", ())) or "rounding"
    return f"w4a8 g{options.get('group_size', 128)} {sym} {methods}"


def _metric(acc: dict[str, Any]) -> str:
    """'metric FP32 -> quantized | delta | agreement or cosine' cells."""
    metric = next(iter(acc["reference"]))
    cand = acc["candidate"]
    cells = f"{metric} {acc['reference'][metric]:.4f} -> {cand[metric]:.4f}"
    if "perplexity_increase_pct" in cand:
        return (f"{cells} | {cand['perplexity_increase_pct']:+.1f} % | "
                f"token cos {cand['mean_token_cosine_to_fp32']:.4f}")
    drop = next(v for k, v in cand.items() if k.endswith("_drop_points"))
    second = cand.get("top1_agreement_with_fp32", cand.get("mean_cosine_to_fp32"))
    return f"{cells} | {-drop:+.2f} pt | {second:.4f}"


if __name__ == "__main__":
    main()
