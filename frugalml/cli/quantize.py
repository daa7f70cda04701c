"""`frugal quantize` and `frugal diagnose`: the quantize stage from the command line."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from frugalml.cli.budget import add_budget_arguments, budget_from


def _data(path: Path) -> Any:
    from frugalml.calibration.descriptor import open_descriptor

    return open_descriptor(path)


def _recipe(args: argparse.Namespace) -> Any:
    import dataclasses

    from frugalml.quantize.recipe import get_recipe

    recipe = get_recipe(args.recipe)
    limits = budget_from(args)
    if args.min_detection_agreement is not None:
        limits["min_detection_agreement"] = args.min_detection_agreement
    budget = dataclasses.replace(recipe.budget, **limits)
    options: dict[str, Any] = {"budget": budget}
    if args.calibration_items:
        options["calibration_items"] = args.calibration_items
    if args.group_size:
        options["group_size"] = args.group_size
    if args.weight_methods:
        options["weight_methods"] = tuple(args.weight_methods.split(","))
    if args.exclude:
        options["ignored_nodes"] = tuple(args.exclude.split(","))
    if args.no_range_safety:
        options["range_safe"] = False
    if args.float_precision:
        options["float_precision"] = args.float_precision
    return get_recipe(args.recipe, **options)


def _check_lines(accuracy: dict[str, Any]) -> list[str]:
    """Each check, then every output part's cosine (the budgeted ones are checks already)."""
    lines = [f"{'pass' if c['passed'] else 'FAIL'}  {c['name']}: {c['value']:.4f} "
             f"(limit {c['limit']})" + (f": {c['why']}" if c.get("why") and not c["passed"]
                                        else "") for c in accuracy["checks"]]
    lines += [f"{who}: " + ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                                     for k, v in values.items())
              for who, values in (("FP32", accuracy.get("reference") or {}),
                                  ("quantized", accuracy.get("candidate") or {})) if values]
    lines += [f"      {p['part']}: mean cosine {p['mean_cosine_to_fp32']:.4f}, worst item "
              f"{p['min_cosine_to_fp32']:.4f} (reported, not budgeted)"
              for p in accuracy.get("parts", ()) if not p.get("budgeted", True)]
    return lines


def cmd_quantize(args: argparse.Namespace) -> None:
    """Quantize one model and print its scores against FP32."""
    from frugalml.cli import _print
    from frugalml.core.progress import Steps
    from frugalml.quantize.api import quantize

    record = quantize(args.model, _data(args.data), args.out, recipe=_recipe(args),
                      backend=args.backend, target=args.target, output_format=args.format,
                      eval_items=args.eval_items, allow_over_budget=args.allow_over_budget,
                      task=args.task, steps=Steps(quiet=args.json))
    acc = record.accuracy or {}
    lines = _check_lines(acc) + [
        f"{record.precision} via {record.backend} ({record.int8_format}): "
        f"{len(record.int8_activation_layers)} layers int8, {len(record.int4_weight_layers)} "
        f"int4-weight, {len(record.weight_only_layers)} int8-weight-only, "
        f"{len(record.float_layers)} float; {record.size_bytes / 1e6:.1f} MB; "
        f"{record.seconds:.0f} s", f"activations: {record.activations}", f"wrote {record.path}"]
    if acc.get("over_budget_kept"):
        lines.insert(0, "WARNING: OVER BUDGET, kept because of --allow-over-budget")
    _print(record.to_dict(), args.json, lines)


def cmd_diagnose(args: argparse.Namespace) -> None:
    """Rank layers by sensitivity and keep the fewest in float that meet the budget."""
    from frugalml.cli import _print
    from frugalml.core.progress import Steps
    from frugalml.quantize.diagnose import diagnose

    result = diagnose(args.model, _data(args.data), args.out, recipe=_recipe(args),
                      backend=args.backend, target=args.target, eval_items=args.eval_items,
                      probe_items=args.probe_items, task=args.task, steps=Steps(quiet=args.json),
                      output_format=args.format)
    lines = [f"all {result.layers} layers INT8: " + ", ".join(
        f"{c['name']} {c['value']:.4f}" for c in result.baseline["checks"])]
    lines += [f"  {s.node}: +{s.recovered:.5f} cosine in float" for s in result.ranking[:10]]
    if result.kept_in_int8:
        lines += [f"not ranked: {len(result.kept_in_int8)} nodes {args.backend} keeps reading "
                  "int8 when told to exclude them (their inputs' pairs are shared)"]
    lines += [f"kept in float: {', '.join(result.ignored_nodes) or 'nothing needed'}"]
    lines += _check_lines(result.final)
    lines += [f"size {result.size_bytes['all_int8'] / 1e6:.2f} -> "
              f"{result.size_bytes['fixed'] / 1e6:.2f} MB; latency (indicative, batch 1) "
              f"{result.latency_ms['all_int8']:.2f} -> {result.latency_ms['fixed']:.2f} ms "
              f"(FP32 {result.latency_ms['fp32']:.2f} ms)",
              f"exclusion list for both backends: --exclude {','.join(result.ignored_nodes)}",
              f"wrote {args.out}"]
    _print(result.to_dict(), args.json, lines)


def add_arguments(quantize: argparse.ArgumentParser, diagnose: argparse.ArgumentParser) -> None:
    """Arguments of both commands (diagnose takes the same recipe options)."""
    from frugalml.quantize import names
    from frugalml.quantize.checks import Task
    from frugalml.quantize.recipe import RECIPES

    for p in (quantize, diagnose):
        p.add_argument("model", type=Path, help=".onnx, .xml, or a `frugal export` folder")
        p.add_argument("--data", type=Path, required=True,
                       help="a `frugal calibrate` folder or its calibration.json")
        p.add_argument("--out", type=Path, required=True, help="output folder (replaced whole)")
        p.add_argument("--recipe", default="int8", help=f"one of {', '.join(RECIPES)}")
        p.add_argument("--backend", default="onnxruntime", help=f"one of {', '.join(names())}")
        p.add_argument("--target", default="auto", help="a target name or file (default: host)")
        add_budget_arguments(p)
        p.add_argument("--eval-items", type=int, default=500, help="evaluation items scored")
        p.add_argument("--calibration-items", type=int, help="calibration items used")
        p.add_argument("--group-size", type=int, help="w4a8: 32, 64 or 128")
        p.add_argument("--weight-methods", help="w4a8 (nncf): awq,scale_estimation,gptq")
        p.add_argument("--exclude", help="comma-separated node names kept in float")
        p.add_argument("--task", choices=[t.value for t in Task],
                       help="what the outputs mean, which decides the scoring (default: "
                       "inferred from the model and data)")
        p.add_argument("--min-detection-agreement", type=float,
                       help="object detection: least share of FP32 detections kept (0.95)")
        p.add_argument("--no-range-safety", action="store_true",
                       help="also quantize the output tail and Concats of mixed ranges")
        p.add_argument("--float-precision", choices=("fp32", "bf16"),
                       help="what an OpenVINO IR's float ops compute in (bf16: CPUs with "
                       "native bf16; default fp32)")
    quantize.add_argument("--format", choices=("onnx", "openvino"),
                          help="output format (default: the input's)")
    quantize.add_argument("--allow-over-budget", action="store_true",
                          help="keep a result over budget, marked as such")
    diagnose.add_argument("--probe-items", type=int, default=64,
                          help="items used to rank layers")
    diagnose.add_argument("--format", choices=("onnx", "openvino"), default="onnx",
                          help="what each point is built as: openvino (with --backend nncf) "
                          "searches IRs, their float nodes at --float-precision")
