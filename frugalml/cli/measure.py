"""`frugal bench`, `frugal report` and `frugal compare`: measuring bundles and reading the
measurements (thin over frugalml.runtime.profile, bench_report and compare)."""

from __future__ import annotations

import argparse
from pathlib import Path

from frugalml.errors import FrugalError


def cmd_report(args: argparse.Namespace) -> None:
    from frugalml.cli import _print
    from frugalml.report.bench import build_bench_report
    from frugalml.report.bench_files import FORMATS, write_bench_report
    from frugalml.report.runs import load_runs

    formats = [f.strip() for f in args.format.split(",") if f.strip()]
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise FrugalError(f"Unknown report format(s) {unknown}; choose from {list(FORMATS)}.")
    written = write_bench_report(build_bench_report(load_runs(args.runs)), args.out, formats)
    _print({k: str(v) for k, v in written.items()}, args.json,
           [f"{k}: {v}" for k, v in written.items()])


def cmd_compare(args: argparse.Namespace) -> None:
    from frugalml.cli import _print
    from frugalml.report.compare import compare_runs, failing
    from frugalml.report.runs import load_runs

    comparisons = compare_runs(load_runs(args.runs), cross_host=args.cross_host)
    if not comparisons:
        raise FrugalError("Nothing to compare: pass a baseline Profile JSON and at least one "
                          "more.")
    lines = [f"{'REGRESSION' if c.regression else 'ok        '} {c.candidate} vs {c.baseline}: "
             f"p50 x{c.p50_ratio:.3f} [{c.p50_ratio_low:.3f}, {c.p50_ratio_high:.3f}], "
             f"p99 x{c.p99_ratio:.3f}, noise ±{c.noise:.1%}"
             + (f" [CROSS-HOST: {c.cross_host}]" if c.cross_host else "") for c in comparisons]
    _print({"comparisons": [c.to_dict() for c in comparisons]}, args.json, lines)
    if args.fail_on_regression is not None and failing(comparisons, args.fail_on_regression):
        raise SystemExit(1)


def cmd_bench(args: argparse.Namespace) -> None:
    from frugalml.cli import _print
    from frugalml.runtime.host import describe_host
    from frugalml.runtime.profile import plan_from, profile_bundle

    if args.against is not None:
        return _bench_pair(args)
    if args.generate:
        return _bench_generate(args)
    prof = profile_bundle(args.bundle, plan=plan_from(args), backend=args.backend,
                          threads=args.threads, spin=args.spin)
    lat, cold = prof.latency_ms, prof.cold_start_ms
    lines = [f"{prof.bundle} on {prof.backend}, {describe_host(prof.host)} "
             f"({prof.settings['runs']} runs, {prof.settings['distinct_inputs']} distinct inputs)",
             f"latency ms: p50 {lat['p50']:.2f} [{lat['p50_ci95'][0]:.2f}, "
             f"{lat['p50_ci95'][1]:.2f}], p90 {lat['p90']:.2f}, p99 {lat['p99']:.2f} "
             f"[{lat['p99_ci95'][0]:.2f}, {lat['p99_ci95'][1]:.2f}], max {lat['max']:.2f}",
             f"cold start ms: verify {cold['verify']:.0f}, compile {cold['compile']:.0f}, "
             f"first inference {cold['first_inference']:.1f}",
             f"throughput, items/s ({prof.settings['batch']} per call): " + ", ".join(
                 f"{k} stream(s) {v:.1f}" for k, v in prof.streams_per_s.items()),
             f"memory: peak RSS {prof.peak_rss_mib:.0f} MiB, model {prof.model_mib:.0f} MiB"]
    if prof.stream:
        rtf = prof.stream["real_time_factor"]
        lines.append(f"stream: {prof.stream['steps_per_s']:.0f} steps/s (p50), " + (
            f"real-time factor {rtf:.0f}x ({prof.stream['chunk_seconds'] * 1e3:.1f} ms of audio "
            "per step)" if rtf else "real-time factor: give --chunk-seconds"))
    if prof.ops:
        k = prof.ops["kernels"]
        lines.append(f"kernels: {k['quantized']} quantized ({k['quantized_share']:.0%} of op "
                     f"time), {k['float']} float ({k['float_share']:.0%})")
        lines += [f"  {t['op_type']:<24} {t['ms_per_run']:7.3f} ms  {t['share']:5.1%}  "
                  f"{t['kernel']}" for t in prof.ops["by_type"][:8]]
    _print(prof.to_dict(), args.json, lines)


def _bench_generate(args: argparse.Namespace) -> None:
    """`frugal bench BUNDLE --generate`: time to first token and decode tokens/s."""
    from frugalml.cli import _print
    from frugalml.runtime.decode_profile import profile_decoding
    from frugalml.runtime.host import describe_host

    prof = profile_decoding(args.bundle, prompt_tokens=args.prompt_tokens,
                            new_tokens=args.new_tokens, threads=args.threads or 1,
                            runs=args.generations, backend=args.backend)
    s = prof["settings"]
    lines = [f"{prof['bundle']} ({prof['precision']}) on {s['backend']}, "
             f"{describe_host(prof['host'])}, {s['threads']} thread(s), {s['runs']} runs of "
             f"{s['new_tokens']} tokens after {s['prompt_tokens']}",
             f"first token (prefill) ms: p50 {prof['first_token_ms']['p50']:.1f}, max "
             f"{prof['first_token_ms']['max']:.1f}",
             f"decode: {prof['decode_tokens_per_s']:.1f} tokens/s, per token ms p50 "
             f"{prof['token_ms']['p50']:.2f}, p99 {prof['token_ms']['p99']:.2f}",
             f"memory: peak RSS {prof['peak_rss_mib']:.0f} MiB, KV cache "
             f"{prof['kv_cache_bytes'] / 2**20:.1f} MiB, model {prof['model_bytes'] / 1e6:.0f} MB"]
    _print(prof, args.json, lines)


def _bench_pair(args: argparse.Namespace) -> None:
    """`frugal bench CANDIDATE --against BASELINE`: the speed protocol's verdict for the pair
    (decoders by their cached decode steps, as deploy judges them)."""
    from frugalml.cli import _print
    from frugalml.cli.deploy import workload_from
    from frugalml.runtime.bundle import read_manifest
    from frugalml.runtime.host import describe_host, read_host
    from frugalml.runtime.speed import Plan, measure_bundles, measure_decoding

    plan = Plan(time_cap_s=args.time_cap)
    if read_manifest(args.bundle).generation is not None:
        verdict = measure_decoding(args.against, args.bundle, threads=args.threads or 1,
                                   plan=plan)
    else:
        verdict = measure_bundles(args.against, args.bundle, backend=args.backend,
                                  threads=args.threads, spin=args.spin, plan=plan,
                                  workload=workload_from(args))
    host = read_host().to_dict()
    lines = [f"{args.bundle} against {args.against} on {describe_host(host)}: {verdict.why}"]
    if verdict.busy_warning():
        lines.append(f"warning: {verdict.busy_warning()}")
    _print({**verdict.to_dict(), "host": host}, args.json, lines)


def add_arguments(report: argparse.ArgumentParser, compare: argparse.ArgumentParser,
                  bench: argparse.ArgumentParser) -> None:
    """Options of `frugal report`, `frugal compare` and `frugal bench`."""
    from frugalml.cli.deploy import add_workload_arguments
    from frugalml.runtime.profile import add_arguments as add_profile_arguments

    subs = {"report": report, "compare": compare}
    for name in ("report", "compare"):
        subs[name].add_argument("runs", type=Path, nargs="+",
                                help="Profile JSONs (first = baseline) and bundle dirs")
    subs["report"].add_argument("--out", type=Path, required=True)
    subs["report"].add_argument("--format", default="json,md,html")
    subs["compare"].add_argument("--fail-on-regression", type=float, metavar="PCT",
                                 help="exit 1 if a regression is slower by more than PCT %%")
    subs["compare"].add_argument("--cross-host", action="store_true",
                                 help="compare runs from different CPUs (labelled)")
    add_profile_arguments(bench)
    bench.add_argument("--against", type=Path, metavar="BASELINE",
                       help="instead of a profile: is BUNDLE faster than BASELINE? (speed "
                            "protocol: interleaved rounds until the 95 %% interval decides)")
    bench.add_argument("--generate", action="store_true",
                       help="decoder bundles: time to first token and decode tokens/s")
    bench.add_argument("--prompt-tokens", type=int, default=128)
    bench.add_argument("--new-tokens", type=int, default=128)
    bench.add_argument("--generations", type=int, default=3,
                       help="with --generate: timed generations after one warm-up")
    bench.add_argument("--time-cap", type=float, default=60.0,
                       help="seconds the --against comparison may take (default 60)")
    add_workload_arguments(bench, batch=False)  # --batch is the profile's too
