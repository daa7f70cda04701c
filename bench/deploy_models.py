"""`frugal deploy` on the three real models of DATA.md, every candidate that applies, on this
host: EfficientNet-Lite0 (ImageNet sample), all-MiniLM-L6-v2 (Rotten Tomatoes) and
SmolLM2-135M (tiny-shakespeare windows). Prints each candidates table and the shipped choice
with the host's family/model, and writes them as Markdown (for the README).

Usage: python bench/deploy_models.py [--out bench-deploy] [--models effnet,minilm,smollm2]
       [--candidates all] [--threads 1] [--batch 8] [--sequence-length 128] [--json PATH]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _report import add_json_option, host_line, write_json


def _effnet(root: Path) -> tuple[object, Path, dict]:
    from _data import IMAGENET, efficientnet_lite0, imagenet_batch

    from frugalml.export import GraphSpec, export

    x, _ = imagenet_batch(4)
    onnx = export(efficientnet_lite0(), root / "effnet-export", example={"image": x[:2]},
                  spec=GraphSpec(("image",), ("logits",), {"image": {0: "batch"}})).path
    return onnx, IMAGENET, {"data_options": {"preset": "tflite"}, "calibration_items": 200,
                            "eval_items": 800, "name": "EfficientNet-Lite0"}


def _minilm(root: Path) -> tuple[object, Path, dict]:
    from frugalml.calibration import rotten_tomatoes_file
    from frugalml.demo import DEMO_NAME, default_model_dir

    return default_model_dir(), rotten_tomatoes_file(), {"eval_items": 2000, "name": DEMO_NAME}


def _smollm2(root: Path) -> tuple[object, Path, dict]:
    from _data import smollm2_gguf, tiny_shakespeare

    return smollm2_gguf(), tiny_shakespeare(), {"calibration_items": 64, "eval_items": 32,
                                                "name": "SmolLM2-135M", "profile_runs": 20}


MODELS = {"effnet": _effnet, "minilm": _minilm, "smollm2": _smollm2}


def main() -> None:
    """Deploy each model, print its table, and write bench-deploy/deploy_models.md."""
    import dataclasses

    from frugalml.deploy import DeployOptions, deploy
    from frugalml.report.deploy_md import COLUMNS, cells, decision_line, workload_text
    from frugalml.runtime.workload import Workload

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bench-deploy"))
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--candidates", default="all")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=1, help="the workload candidates are "
                        "timed at (decoders: their decode steps, whatever the workload)")
    parser.add_argument("--sequence-length", type=int)
    add_json_option(parser)
    args = parser.parse_args()
    workload = Workload(batch=args.batch, sequence_length=args.sequence_length)
    lines, records = [host_line(args.threads) + ".", ""], {}
    for key in args.models.split(","):
        model, data, extra = MODELS[key](args.out)
        options = dataclasses.replace(DeployOptions(candidates=args.candidates,
                                                    threads=args.threads, workload=workload),
                                      **extra)
        result = deploy(model, data, args.out / key, options)
        records[key] = result.record
        for target, r in result.record["targets"].items():
            lines += [f"### {extra['name']} on {target}", "", decision_line(target, r), "",
                      f"Why: {r['why']}", "", "| " + " | ".join(COLUMNS) + " |",
                      "|" + "---|" * len(COLUMNS)]
            lines += ["| " + " | ".join(x.replace("|", "/") for x in cells(c)) + " |"
                      for c in r["candidates"]]
            lines += ["", f"({result.record['seconds']} s; task {result.record['task']}, "
                      f"metric {result.record['metric']}; timed at {workload_text(result.record)})",
                      ""]
        print("\n".join(lines[-(len(r["candidates"]) + 8):]), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "deploy_models.md").write_text("\n".join(lines))
    print("\n".join(lines))
    if args.json:
        write_json(args.json, {"threads": args.threads, "workload": workload.to_dict(),
                               "deploys": records})


if __name__ == "__main__":
    main()
