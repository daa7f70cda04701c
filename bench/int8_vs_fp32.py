"""Print INT8-vs-FP32 latency ratios of the bundles a deploy wrote, measured in one run here.

Usage: python bench/int8_vs_fp32.py [OUT_DIR] [--rounds N] [--runs N]
OUT_DIR is where `frugal demo` / `frugal deploy` wrote report.json (default: frugal-out).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from frugalml._progress import Steps
from frugalml.pipeline import DeployOptions, profile_alternating


def main() -> None:
    """Profile the FP32 and INT8 bundles in alternating fresh processes and print ratios."""
    parser = argparse.ArgumentParser()
    parser.add_argument("out_dir", type=Path, nargs="?", default=Path("frugal-out"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()
    report = json.loads((args.out_dir / "report.json").read_text())
    bundles = {name: Path(path) for name, path in report["bundles"].items()}
    options = dataclasses.replace(DeployOptions(), profile_rounds=args.rounds,
                                  profile_runs=args.runs)
    profiles = profile_alternating(bundles, options, Steps())
    host = profiles["fp32"]["host"]
    print(f"host: {host['cpu_model']} ({host['machine']}, {host['logical_cores']} cores), "
          f"VNNI: {'yes' if {'avx512_vnni', 'avx_vnni'} & set(host['flags']) else 'no'}")
    for stat in ("p50", "p90", "p99", "mean"):
        fp32, int8 = profiles["fp32"]["latency_ms"][stat], profiles["int8"]["latency_ms"][stat]
        print(f"{stat:>4}: fp32 {fp32:8.2f} ms  int8 {int8:8.2f} ms  speed-up {fp32 / int8:.2f}x")
    for name, prof in profiles.items():
        rounds = ", ".join(f"{p:.2f}" for p in prof["p50_rounds"])
        print(f"{name} p50 per round (ms): {rounds}")


if __name__ == "__main__":
    main()
