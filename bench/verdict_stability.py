"""Does the speed protocol give the same verdict twice? FP32 + three INT8 formats of
EfficientNet-Lite0 (ImageNet sample) and all-MiniLM-L6-v2 (Rotten Tomatoes) are built once, then
each (FP32, INT8) pair is judged 5 times in a row by the protocol (1 thread, batch 1), with a
second process spinning on one core beside runs 2 and 4. A pair is stable when its 5 verdicts
agree, or are `inconclusive` and one other verdict (never faster once and slower once).

Usage: python bench/verdict_stability.py [--runs 5] [--threads 1] [--time-cap 60] [--json PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from _report import add_json_option, emit

# INT8 formats by the target that uses them (the S8S8 model of arm64 is timed on this host too).
VARIANTS = (("int8 U8S8", "x86-avx512"), ("int8 U8S8-rr", "x86-avx2"), ("int8 S8S8", "arm64"))
LOADED_RUNS = (1, 3)  # 0-based: the 2nd and 4th run


def _spin(core: int, parent: int) -> None:
    """Keep one core busy until the parent is gone (a killed bench must not leave it running)."""
    os.sched_setaffinity(0, {core})
    while os.getppid() == parent:
        pass


@contextlib.contextmanager
def _load(on: bool) -> Iterator[None]:
    """A second process busy on the last core while the block runs."""
    if not on:
        yield
        return
    proc = multiprocessing.get_context("spawn").Process(
        target=_spin, args=(max(os.sched_getaffinity(0)), os.getpid()), daemon=True)
    proc.start()
    try:
        yield
    finally:
        proc.terminate()
        proc.join()


def _build(root: Path) -> list[tuple[str, str, Path, Path, dict[str, Any]]]:
    """(model, variant, fp32 file, int8 file, one-sample feeds) for every pair."""
    from _data import effnet_set, minilm_set

    from frugalml.quantize.api import quantize

    pairs = []
    for name, build in (("EfficientNet-Lite0", effnet_set), ("all-MiniLM-L6-v2", minilm_set)):
        fp32, data = build(root)
        feeds = {k: v[:1] for k, v in next(data.batches("evaluation", batch_size=1))[0].items()}
        for label, target in VARIANTS:
            q = quantize(fp32, data, root / f"{name}-{target}", recipe="int8", target=target,
                         eval_items=100, allow_over_budget=True)
            pairs.append((name, label, fp32, q.path, feeds))
            print(f"built {name} {label} ({target})", file=sys.stderr, flush=True)
    return pairs


def stable(verdicts: list[str]) -> bool:
    """Never faster once and slower once."""
    return not {"faster", "slower"} <= set(verdicts)


COLUMNS = ("model", "INT8 variant", "run", "other core", "speed", "rounds (repeated)",
           "others' cores max", "s")


def main() -> None:
    """Build once, judge each pair ``--runs`` times, print a table and a stability line."""
    from frugalml.runtime.host import read_host
    from frugalml.runtime.speed import Plan
    from frugalml.targets.speed_gate import measure_speed

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--time-cap", type=float, default=60.0)
    add_json_option(parser)
    args = parser.parse_args()
    host = read_host()
    pairs = _build(Path(tempfile.mkdtemp(prefix="verdict-stability-")))
    plan = Plan(time_cap_s=args.time_cap)
    rows, summary = [], {}
    for name, label, fp32, int8, feeds in pairs:
        verdicts = []
        for run in range(args.runs):
            loaded = run in LOADED_RUNS
            with _load(loaded):
                v = measure_speed(fp32, int8, feeds, threads=args.threads, plan=plan,
                                  host=host)
            verdicts.append(v.verdict)
            rows.append({"model": name, "INT8 variant": label, "run": run + 1,
                         "other core": "busy" if loaded else "idle",
                         "speed": v.describe(short=True),
                         "rounds (repeated)": f"{v.rounds} ({v.repeated_rounds})",
                         "others' cores max": v.load["max_other_cores"],
                         "s": round(v.seconds), "verdict": v.to_dict()})
            print(f"{name} {label} run {run + 1}: {rows[-1]['speed']}", file=sys.stderr,
                  flush=True)
        summary[f"{name} {label}"] = (f"{', '.join(verdicts)} -> "
                                      f"{'STABLE' if stable(verdicts) else 'FLIPPED'}")
    emit(f"speed protocol verdicts, {args.runs} runs per pair (L2 {host.l2_kib} KiB, L3 "
         f"{host.l3_kib} KiB, hypervisor {host.hypervisor}, governor {host.governor})",
         COLUMNS, rows, json_path=args.json, threads=args.threads, stability=summary)
    print("\n".join(f"{pair}: {line}" for pair, line in summary.items()))


if __name__ == "__main__":
    main()
