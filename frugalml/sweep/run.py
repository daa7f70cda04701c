"""`frugal sweep`: plan the grid, skip measured cells, run the rest on Ray, write the reports."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

from frugalml.core.records import write_json_atomic
from frugalml.runtime.host import read_host
from frugalml.sweep.cluster import connect, disconnect, run_cells
from frugalml.sweep.plan import CellStore, plan_cells
from frugalml.sweep.report import table_rows, write_reports
from frugalml.sweep.spec import load_spec

SUMMARY_NAME = "sweep.json"


@dataclasses.dataclass(frozen=True, slots=True)
class SweepResult:
    """Where the results went, and what this run did."""

    out: Path
    rows: list[dict[str, Any]]
    ran: list[str]
    reused: list[str]
    reports: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {"out": str(self.out), "rows": self.rows, "ran": self.ran,
                "reused": self.reused, "reports": self.reports}


class _Progress:
    """A bar per stage on stderr, and a line per finished cell."""

    def __init__(self, totals: dict[str, int], quiet: bool) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        self.console = Console(stderr=True, quiet=quiet)
        self.bars = Progress("{task.description}", BarColumn(), MofNCompleteColumn(),
                             TimeElapsedColumn(), console=self.console, transient=False)
        self.tasks = {kind: self.bars.add_task(kind, total=n) for kind, n in totals.items() if n}

    def event(self, kind: str, detail: str) -> None:
        if kind == "cell":
            self.bars.console.print(detail)
        elif kind in self.tasks:
            self.bars.advance(self.tasks[kind])


def run_sweep(spec_path: Path, out: Path | None = None, *, address: str | None = None,
              workers: int | None = None, build_here: bool = False,
              quiet: bool = False) -> SweepResult:
    """Run every cell of the spec at ``spec_path`` not yet measured into ``out``.

    A cell that fails records its typed error (stage, type, message) and the others go on;
    a re-run runs only the cells without a measured record (failed and unmeasured ones
    included), reusing every stage already built.

    Raises:
        SweepError: a bad spec, or Ray cannot start or connect; CalibrationError: a model's
            data is not a calibration descriptor or changed since; FrugalError: Ray missing.
    """
    spec = load_spec(spec_path)
    out = Path(out or f"sweep-{spec.name}").resolve()
    store = CellStore(out)
    plans = plan_cells(spec)
    todo = [p for p in plans if not store.is_measured(p.key)]
    started = time.perf_counter()
    if todo:
        _run(todo, spec, store, address, workers, build_here, quiet, _baselines(plans, todo))
    records = [store.read(p.key) or {"key": p.key, "label": p.cell.label, "status": "not run"}
               for p in plans]
    reports = {k: str(v) for k, v in write_reports(records, out, spec.name).items()}
    result = SweepResult(out=out, rows=table_rows(records), ran=[p.cell.label for p in todo],
                         reused=[p.cell.label for p in plans if p not in todo], reports=reports)
    write_json_atomic(out / SUMMARY_NAME, {
        **result.to_dict(), "spec": str(Path(spec_path).resolve()), "name": spec.name,
        "seconds": round(time.perf_counter() - started, 1), "driver_host": read_host().to_dict(),
        "records": records})
    return result


def _baselines(plans: list[Any], todo: list[Any]) -> list[Any]:
    """Measured FP32 cells that quantized cells about to run are timed against."""
    def pair(p: Any) -> tuple[Any, ...]:
        return p.cell.model.name, p.cell.backend, p.cell.target, p.cell.threads

    wanted = {pair(p) for p in todo if not p.cell.candidate.is_fp32}
    return [p for p in plans if p not in todo and p.cell.candidate.is_fp32
            and pair(p) in wanted]


def _run(todo: list[Any], spec: Any, store: CellStore, address: str | None,
         workers: int | None, build_here: bool, quiet: bool, baselines: list[Any]) -> None:
    fleet = connect(address, workers, spec.targets, build_here)
    try:
        totals = {"export": len({p.export_key for p in todo}),
                  "quantize": len({p.quantize_key for p in todo}),
                  "compile": len({p.compile_key for p in todo}),
                  "bench": sum(p.cell.target in fleet.devices for p in todo)}
        progress = _Progress(totals, quiet)
        where = "embedded Ray" if fleet.embedded else f"Ray at {address}"
        progress.console.print(f"{len(todo)} cells to run on {where}; devices: "
                               + (", ".join(f"{t} x{n}" for t, n in fleet.devices.items())
                                  or "none"))
        with progress.bars:
            run_cells(todo, spec, store, fleet, progress.event, baselines)
    finally:
        disconnect()


def count_by_status(rows: list[dict[str, Any]]) -> dict[str, int]:
    """How many cells ended measured, built, failed or not run."""
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    return counts

