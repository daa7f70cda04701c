"""`frugal deploy` and `frugal demo`: the deploy engine from the command line."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from frugalml.cli.budget import add_budget_arguments, budget_from
from frugalml.errors import FrugalError

# CLI budget flags -> Budget fields (only the given ones override a recipe's defaults)
_UNITS = {"s": 1, "m": 60, "h": 3600, "": 1}


def parse_duration(text: str) -> float:
    """``20m``, ``90s``, ``1h`` or plain seconds.

    Raises:
        FrugalError: anything else.
    """
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text)
    if not match:
        raise FrugalError(f"--time-budget {text!r} is not a duration: write e.g. 20m, 90s, "
                          "1h or a number of seconds.")
    return float(match[1]) * _UNITS[match[2]]


def options_from(args: argparse.Namespace, **overrides: Any) -> Any:
    """DeployOptions from the deploy/demo flags."""
    from frugalml.cli.calibrate import reader_flags
    from frugalml.deploy import DeployOptions

    budget = budget_from(args)
    targets = tuple(t.strip() for t in args.targets.split(",") if t.strip())
    return DeployOptions(
        targets=targets, task=getattr(args, "task", None), budget=budget,
        candidates=args.candidates, time_budget_s=parse_duration(args.time_budget),
        threads=args.threads, calibration_items=args.num, eval_items=args.eval_items,
        profile_runs=args.profile_runs, require_quantized=args.require_quantized,
        data_options=reader_flags(args) if hasattr(args, "preset") else {},
        workload=workload_from(args), **overrides)


def workload_from(args: argparse.Namespace) -> Any:
    """The Workload of --batch, --sequence-length and --shape (deploy, demo, bench)."""
    from frugalml.runtime.workload import Workload, parse_shape

    return Workload(batch=args.batch, sequence_length=args.sequence_length,
                    shapes=tuple(parse_shape(s) for s in args.shape or ()))


def add_workload_arguments(p: argparse.ArgumentParser, *, batch: bool = True) -> None:
    """--batch, --sequence-length and --shape: the workload candidates are timed at."""
    if batch:
        p.add_argument("--batch", type=int, default=1, help="items per timed call")
    p.add_argument("--sequence-length", type=int, metavar="L",
                   help="time at L tokens (axis 1 of inputs whose axis 1 is dynamic)")
    p.add_argument("--shape", action="append", metavar="NAME=D0xD1...",
                   help="time input NAME at this whole shape (repeatable)")


def cmd_deploy(args: argparse.Namespace) -> None:
    """Run the engine on MODEL and DATA; print the decision per target."""
    from frugalml.deploy import deploy

    result = deploy(args.model, args.data, args.out,
                    options_from(args, **({"name": args.name} if args.name else {})),
                    quiet=args.quiet)
    print_result(result, args.json)


def cmd_demo(args: argparse.Namespace) -> None:
    """The engine on the bundled MiniLM and Rotten Tomatoes snippets."""
    from frugalml.demo import run_demo

    print_result(run_demo(args.out, options=options_from(args), quiet=args.quiet), args.json)


def print_result(result: Any, as_json: bool) -> None:
    """deploy.json with --json; else the decision per target and where things went."""
    from frugalml.cli import _print
    from frugalml.report.deploy_md import decision_line
    from frugalml.runtime.bundle import manifest_digest

    record = result.record
    lines = []
    for target, r in record["targets"].items():
        lines += [decision_line(target, r), f"  why: {r['why']}"]
        if r["bundle"]:
            lines += [f"  bundle: {r['bundle']}",
                      f"  bundle manifest sha256: {manifest_digest(Path(r['bundle']))}"]
    lines += [f"deploy record: {result.deploy_json}", f"report: {result.report_md}",
              f"report (HTML, plots): {result.report_html}"]
    _print(record, as_json, lines)


def add_arguments(deploy: argparse.ArgumentParser, demo: argparse.ArgumentParser) -> None:
    """Flags of both faces; deploy also takes MODEL, DATA and how to read the data."""
    from frugalml.cli.calibrate import add_reader_arguments
    from frugalml.deploy.candidates import CANDIDATES

    deploy.add_argument("model", type=Path,
                        help="Hugging Face model dir, .onnx, OpenVINO .xml, or .gguf")
    deploy.add_argument("data", type=Path, help="image folder, .npy/.npz, text file (.csv, "
                        ".jsonl, .txt, optionally .gz/.bz2), or a `frugal calibrate` folder")
    deploy.add_argument("--task", choices=("classification", "embedding", "language-model",
                                           "object-detection", "outputs"),
                        help="what the outputs mean (default: inferred)")
    deploy.add_argument("--name", help="name of the bundles and reports (default: the model's)")
    for p in (deploy, demo):
        p.formatter_class = argparse.ArgumentDefaultsHelpFormatter
        p.add_argument("--out", type=Path, default=Path("frugal-out"))
        p.add_argument("--targets", "--target", default="auto",
                       help="comma-separated targets or target files (`frugal targets`)")
        p.add_argument("--candidates", default="default", help="default, all, or names: "
                       f"fp32, {', '.join(CANDIDATES)}")
        add_budget_arguments(p)
        p.add_argument("--time-budget", default="20m", help="bound on the candidate search")
        p.add_argument("--threads", type=int, default=0, help="threads for timing (0: all)")
        p.add_argument("--num", type=int, default=300,
                       help="calibration items; the rest is the evaluation part")
        p.add_argument("--eval-items", type=int, help="evaluation items every candidate is "
                       "scored on (default: 2000; 64 token windows for a language model)")
        p.add_argument("--profile-runs", type=int, default=200,
                       help="runs of the fresh-process profile of the shipped and FP32 bundles")
        p.add_argument("--require-quantized", action="store_true",
                       help="exit with an error where FP32 ships")
        p.add_argument("--quiet", action="store_true", help="no progress on stderr (it is "
                       "shown with --json too: the JSON goes to stdout)")
        add_workload_arguments(p)
    add_reader_arguments(deploy)
