"""frugalml side by side with what users would pick instead, measured in one run on this host.

For EfficientNet-Lite0 (ImageNet-sample top-1), all-MiniLM-L6-v2 (Rotten Tomatoes probe
accuracy, cosine) and, for 4-bit rows, SmolLM2-135M (tiny-shakespeare perplexity): FP32 in ONNX
Runtime and OpenVINO, each peer's default route (bench/_peers.py) and frugalml's. Per row:
p50/p99 latency at 1 and 2 threads (all rows interleaved, same input, batch 1), the ratio to
FP32 of the same backend, size on disk, metric and delta vs FP32 on held-out items (scored by
one scorer for every row), quantization wall time and peak RSS (each route in its own
process), whether the recipe's budget is met, and frugalml's speed-gate verdict.

Usage: python bench/compare_peers.py [--quick] [--json out.json] [--models a,b]
(optimum-intel rows need `pip install -c constraints.txt -e ".[peers]"`; without it they
say so.)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _peers as peers

ROUTES = {  # name -> (label, route, precision of its budget)
    "ort-static": ("ORT quantize_static defaults", peers.ort_static_default, "int8"),
    "ort-dynamic": ("ORT quantize_dynamic defaults", peers.ort_dynamic_default, "int8"),
    "optimum-ort": ("optimum ORTQuantizer avx2 dynamic", peers.optimum_ort_dynamic, "int8"),
    "optimum-ov": ("optimum-intel OVQuantizer defaults", peers.optimum_ov_static, "int8"),
    "nncf-onnx": ("NNCF quantize defaults (ONNX)", peers.nncf_onnx_default, "int8"),
    "nncf-ov": ("NNCF quantize defaults (OpenVINO)", peers.nncf_openvino_default, "int8"),
    "frugalml-int8": ("frugalml int8 (host target)", peers.frugalml_recipe("int8"), "int8"),
    "ort-int4": ("ORT MatMulNBits defaults", peers.ort_matmulnbits_default, "w4a8"),
    "nncf-int4": ("NNCF compress_weights INT4_SYM", peers.nncf_int4_default, "w4a8"),
    "frugalml-w4a8": ("frugalml w4a8", peers.frugalml_recipe("w4a8"), "w4a8"),
    "frugalml-w4a8-awq": ("frugalml w4a8 NNCF AWQ+SE g128",
                          peers.frugalml_recipe("w4a8", "nncf", "openvino", group_size=128,
                                                weight_symmetric=True,
                                                weight_methods=("awq", "scale_estimation")),
                          "w4a8"),
}
PLAN = {
    "EfficientNet-Lite0": ["ort-static", "nncf-onnx", "nncf-ov", "frugalml-int8"],
    "all-MiniLM-L6-v2": ["ort-static", "ort-dynamic", "optimum-ort", "optimum-ov", "nncf-onnx",
                         "nncf-ov", "frugalml-int8", "ort-int4", "nncf-int4", "frugalml-w4a8"],
    "SmolLM2-135M": ["ort-int4", "nncf-int4", "frugalml-w4a8", "frugalml-w4a8-awq"],
}
QUICK_PLAN = {"EfficientNet-Lite0": PLAN["EfficientNet-Lite0"],
              "all-MiniLM-L6-v2": ["ort-static", "ort-dynamic", "nncf-ov", "frugalml-int8"]}
# (calibration items, evaluation items, timing rounds, runs per round) for (--quick, full)
SIZES = {"EfficientNet-Lite0": ((32, 100, 3, 10), (200, 800, 5, 30)),
         "all-MiniLM-L6-v2": ((64, 150, 3, 10), (300, 600, 5, 30)),
         "SmolLM2-135M": ((16, 8, 2, 3), (64, 32, 3, 5))}


def data_for(model: str, calibration_items: int) -> Any:
    """The model's real data, split the same way in every process."""
    from frugalml.calibration import ImageFolder, TokenWindows, build_text_set, make_set

    if model == "EfficientNet-Lite0":
        from _data import IMAGENET

        return make_set(ImageFolder(IMAGENET, preset="tflite", input_name="image"),
                        calibration_size=calibration_items)
    if model == "all-MiniLM-L6-v2":
        from frugalml.calibration import rotten_tomatoes_file
        from frugalml.demo import default_model_dir
        from frugalml.export.huggingface import INPUT_NAMES

        return build_text_set(rotten_tomatoes_file(), default_model_dir(),
                              input_names=INPUT_NAMES, calibration_size=calibration_items)
    from _data import smollm2_gguf, tiny_shakespeare

    from frugalml.export.gguf import gguf_model_dir

    return make_set(TokenWindows(tiny_shakespeare(), gguf_model_dir(smollm2_gguf()), window=128),
                    calibration_size=calibration_items)


def child(model: str, route: str, fp32: Path, out: Path, calibration_items: int,
          eval_items: int) -> None:
    """Run one route in this process; print where its model went and the peak RSS of the
    quantization alone (the high-water mark is reset after the data is read: Linux's
    clear_refs "5")."""
    data = data_for(model, calibration_items)
    Path("/proc/self/clear_refs").write_text("5")
    start = time.perf_counter()
    path = ROUTES[route][1](fp32, data, out, eval_items)
    print(f"ROUTE-SECONDS {time.perf_counter() - start:.3f}", flush=True)
    hwm = next(ln for ln in Path("/proc/self/status").read_text().splitlines()
               if ln.startswith("VmHWM:"))
    print(f"ROUTE-PEAK-KIB {hwm.split()[1]}", flush=True)
    print("ROUTE-OUTPUT " + str(path), flush=True)


def run_route(model: str, route: str, fp32: Path, out: Path, calibration_items: int,
              eval_items: int) -> dict[str, Any]:
    """Quantize in a child process: its output path, and the wall time and peak RSS of the
    quantization call alone (not the process start or the data loading)."""
    out.mkdir(parents=True)
    log = out.parent / f"{out.name}.log"
    with log.open("w") as sink:
        proc = subprocess.Popen([sys.executable, __file__, "--child", model, route, str(fp32),
                                 str(out), str(calibration_items), str(eval_items)],
                                stdout=sink, stderr=sink)
        status = proc.wait()
    text = log.read_text(errors="replace")
    found = [ln.split(" ", 1)[1] for ln in text.splitlines() if ln.startswith("ROUTE-OUTPUT ")]
    peak = [int(ln.split()[1]) for ln in text.splitlines() if ln.startswith("ROUTE-PEAK-KIB")]
    seconds = [float(ln.split()[1]) for ln in text.splitlines()
               if ln.startswith("ROUTE-SECONDS")]
    result = {"seconds": seconds[-1] if seconds else 0.0,
              "peak_rss_mib": peak[-1] / 1024 if peak else 0.0}
    if status != 0 or not found:
        last = [ln for ln in text.splitlines() if ln.strip()][-1:] or ["no output"]
        return {**result, "error": last[0][:200]}
    return {**result, "path": found[-1]}


def main() -> None:
    """Build, quantize, score, time; print the table and the goals; write JSON."""
    from _compare_table import print_model
    from _compare_timing import time_rows
    from _data import MODEL_SETS
    from _report import add_json_option, host_line, write_json

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"{' and '.join(QUICK_PLAN)}, fewer routes and items (under 5 "
                        "minutes)")
    parser.add_argument("--models", help=f"comma-separated subset of {', '.join(PLAN)}")
    add_json_option(parser)
    args = parser.parse_args()
    models = args.models.split(",") if args.models else list(QUICK_PLAN if args.quick
                                                              else PLAN)
    root = Path(tempfile.mkdtemp(prefix="compare-peers-"))
    print(host_line(), flush=True)
    results = {}
    for model in models:
        calib, items, rounds, runs = SIZES[model][0 if args.quick else 1]
        fp32 = MODEL_SETS[model](root)[0]
        data = data_for(model, calib)
        rows = {"fp32-ort": {"label": "FP32 ONNX Runtime", "path": str(fp32), "seconds": 0.0},
                "fp32-ov": {"label": "FP32 OpenVINO", "path": str(_fp32_ir(fp32)),
                            "seconds": 0.0}}
        for route in (QUICK_PLAN if args.quick else PLAN)[model]:
            rows[route] = {"label": ROUTES[route][0], "precision": ROUTES[route][2],
                           **run_route(model, route, fp32, root / model / route, calib,
                                       items)}
        for row in rows.values():
            if "path" in row:
                _score(row, fp32, data, items)
        feeds = next(data.batches("evaluation", batch_size=1))[0]
        time_rows(rows, feeds, rounds=rounds, runs=runs)
        results[model] = rows
        print_model(model, rows)
    if args.json:
        write_json(args.json, {"models": results})


def _score(row: dict[str, Any], fp32: Path, data: Any, items: int) -> None:
    """Accuracy against FP32 and size; a model the runtime cannot load becomes an error row
    (NNCF's ONNX INT8 of MiniLM did: QuantizeLinear output INT8 with a UINT8 zero point)."""
    from frugalml.errors import FrugalError
    from frugalml.quantize.accuracy import measure
    from frugalml.quantize.api import model_bytes
    from frugalml.quantize.recipe import get_recipe

    path = Path(row["path"])
    try:
        report = measure(fp32, path, data, get_recipe(row.get("precision", "int8")).budget,
                         items=items)
    except FrugalError as e:
        row["error"] = f"{type(e).__name__}: {str(e)[:160]}"
        del row["path"]
        return
    row |= {"accuracy": report.to_dict(), "size_bytes": model_bytes(path),
            "size_ratio": model_bytes(path) / model_bytes(fp32)}


def _fp32_ir(fp32: Path) -> Path:
    """The FP32 model as an OpenVINO IR with FP32 weights (the OpenVINO baseline)."""
    import openvino as ov

    xml = fp32.parent / "fp32-ir" / "model.xml"
    xml.parent.mkdir(exist_ok=True)
    ov.save_model(ov.convert_model(str(fp32)), str(xml), compress_to_fp16=False)
    return xml


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], Path(sys.argv[4]), Path(sys.argv[5]),
              int(sys.argv[6]), int(sys.argv[7]))
    else:
        main()
