"""`frugal sweep SPEC`: the grid of models x candidates x backends x targets x settings on Ray."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The sweep's options."""
    p.add_argument("spec", type=Path, help="sweep spec (.yaml, .yml or .json)")
    p.add_argument("--out", type=Path, help="results folder (default: sweep-<name>)")
    p.add_argument("--address", help="join a Ray cluster ('auto' or HOST:PORT) instead of "
                   "starting Ray in this process")
    p.add_argument("--workers", type=int, help="CPUs of the embedded Ray (default: all); "
                   "1 runs one task at a time")
    p.add_argument("--build-here", action="store_true", help="run build stages on this node "
                   "only (when the cluster's nodes do not share the sweep's paths)")


def cmd_sweep(args: argparse.Namespace) -> None:
    """Run the cells not yet measured; print the table's location and the counts."""
    from frugalml.cli import _print
    from frugalml.errors import SweepError
    from frugalml.sweep.run import count_by_status, run_sweep

    if args.workers is not None and (args.workers < 1 or args.address):
        raise SweepError("--workers takes a count >= 1 and applies to the embedded Ray only "
                         "(a cluster's nodes bring their own CPUs).")
    result = run_sweep(args.spec, args.out, address=args.address, workers=args.workers,
                       build_here=args.build_here, quiet=args.json)
    counts = count_by_status(result.rows)
    _print(result.to_dict(), args.json, [
        f"{len(result.rows)} cells: " + ", ".join(f"{n} {s}" for s, n in counts.items())
        + f" (ran {len(result.ran)}, already measured {len(result.reused)})",
        *(f"{kind}: {path}" for kind, path in result.reports.items())])
