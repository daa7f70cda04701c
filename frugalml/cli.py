"""The `frugal` command line: each stage callable alone, plus `deploy` and `demo` for the path."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from frugalml.errors import FrugalError


def _print(result: dict[str, Any], as_json: bool, lines: list[str]) -> None:
    print(json.dumps(result, indent=2, default=str) if as_json else "\n".join(lines))


def _deploy_summary(result: Any, as_json: bool) -> None:
    report = result.report
    summary = {"shipped": report["shipped"], "shipped_bundle": str(result.shipped_bundle),
               "bundles": {k: str(v) for k, v in result.bundles.items()},
               "report_json": str(result.report_json), "report_md": str(result.report_md),
               "speedup_p50": report["speedup_p50"], "checks": report["checks"]}
    lines = [f"{'pass' if c['passed'] else 'FAIL'}  {c['name']}: {c['value']:.4f} "
             f"(limit {c['limit']})" for c in report["checks"]]
    lines += [f"shipped: {report['shipped'].upper()}", f"bundle: {result.shipped_bundle}",
              f"report: {result.report_md}", f"report (JSON): {result.report_json}"]
    _print(summary, as_json, lines)


def _cmd_demo(args: argparse.Namespace) -> None:
    from frugalml.demo import run_demo

    _deploy_summary(run_demo(args.out, eval_items=args.eval_items, quiet=args.json), args.json)


def _cmd_deploy(args: argparse.Namespace) -> None:
    import dataclasses

    from frugalml.pipeline import DeployOptions, deploy

    options = dataclasses.replace(DeployOptions(), target=args.target, eval_items=args.eval_items)
    _deploy_summary(deploy(args.model, args.data, args.out, options, quiet=args.json), args.json)


def _cmd_verify(args: argparse.Namespace) -> None:
    from frugalml.runtime import load

    model = load(args.bundle)
    check = model.self_check()
    _print({"bundle": str(args.bundle), "ok": True, **check}, args.json,
           [f"ok: {args.bundle} (hashes, target, samples: min cosine "
            f"{check['min_cosine']:.6f}, max abs error {check['max_abs_error']:.3g})"])


def _cmd_run(args: argparse.Namespace) -> None:
    import numpy as np

    from frugalml.runtime import load

    model = load(args.bundle)
    try:
        with np.load(args.inputs, allow_pickle=False) as data:
            feeds = {k: data[k] for k in data.files}
    except (OSError, ValueError) as e:
        raise FrugalError(f"Cannot read inputs from {args.inputs}: {e}. Pass an .npz file "
                          f"with arrays named {list(model.input_names)}.") from e
    outputs = model.run(feeds)
    if args.out:
        np.savez(args.out, **outputs)
    _print({k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in outputs.items()},
           args.json, [f"{k}: {v.dtype} {tuple(v.shape)}" for k, v in outputs.items()])


def _cmd_bench(args: argparse.Namespace) -> None:
    from frugalml.runtime.profile import profile_bundle

    prof = profile_bundle(args.bundle, runs=args.runs, warmup=args.warmup, threads=args.threads)
    lat = prof.latency_ms
    _print(prof.to_dict(), args.json,
           [f"{prof.bundle}: p50 {lat['p50']:.2f} ms, p90 {lat['p90']:.2f}, p99 {lat['p99']:.2f}, "
            f"{prof.throughput_per_s:.1f}/s, load {prof.cold_start_ms['load']:.0f} ms, "
            f"peak RSS {prof.peak_rss_mib:.0f} MiB on {prof.host['cpu_model']}"])


def _cmd_targets(args: argparse.Namespace) -> None:
    from frugalml.runtime.host import read_host
    from frugalml.targets import TARGETS, detect, support

    host = read_host()
    table = support(host)
    best = detect(host).name if any(not m for m in table.values()) else None
    _print({"host": host.to_dict(), "best": best, "missing": table}, args.json,
           [f"{n}: {'native' if not m else 'missing ' + ', '.join(m)}"
            f"{'  (best)' if n == best else ''} - {TARGETS[n].description}"
            for n, m in table.items()])


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="frugal", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    commands: dict[str, tuple[Callable[[argparse.Namespace], None], str]] = {
        "demo": (_cmd_demo, "run the whole path on the bundled model and data"),
        "deploy": (_cmd_deploy, "export, quantize, bundle, measure and report one model"),
        "verify": (_cmd_verify, "check a bundle's hashes, target and sample outputs"),
        "run": (_cmd_run, "run a bundle on inputs from an .npz file"),
        "bench": (_cmd_bench, "profile a bundle's latency on this host"),
        "targets": (_cmd_targets, "show which targets this host runs"),
    }
    subs = {}
    for name, (fn, help_text) in commands.items():
        subs[name] = sub.add_parser(name, help=help_text)
        subs[name].set_defaults(fn=fn)
        subs[name].add_argument("--json", action="store_true", help="machine-readable output")
    for name in ("demo", "deploy"):
        subs[name].add_argument("--out", type=Path, default=Path("frugal-out"))
        subs[name].add_argument("--eval-items", type=int, default=2000)
    subs["deploy"].add_argument("model", type=Path, help="Hugging Face sentence-encoder dir")
    subs["deploy"].add_argument("data", type=Path, help="labelled texts (.csv.bz2)")
    subs["deploy"].add_argument("--target", default="auto")
    for name in ("verify", "run", "bench"):
        subs[name].add_argument("bundle", type=Path)
    subs["run"].add_argument("inputs", type=Path)
    subs["run"].add_argument("--out", type=Path)
    subs["bench"].add_argument("--runs", type=int, default=200)
    subs["bench"].add_argument("--warmup", type=int, default=20)
    subs["bench"].add_argument("--threads", type=int, default=0)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point: FrugalError becomes one line on stderr and exit code 2, no traceback."""
    args = _parser().parse_args(argv)
    try:
        args.fn(args)
    except FrugalError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
