"""The sweep's results: one table over every cell, the Pareto front per target, and the
benchmark report (JSON, Markdown, HTML with plots) over the measured cells.

Each row's speed is compared with the FP32 cell of the same model, backend, target and
threads, measured in the same sweep. The front is drawn per target and model: latency and
size lower, mean cosine to the model's own FP32 higher; other models' numbers, or other
devices' latencies, do not compete.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from frugalml.core.records import write_text_atomic
from frugalml.report.bench import build_bench_report, mark_pareto
from frugalml.report.bench_files import write_bench_report
from frugalml.report.compare import compare_pair
from frugalml.report.runs import Run
from frugalml.runtime.speed import describe
from frugalml.sweep.plan import MEASURED


def table_rows(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One plain row per cell, in the order given, with ``x_fp32`` and ``dominated_by``."""
    rows = [_row(r) for r in records]
    fp32 = {_sibling(r): r for r in rows if r["precision"] == "fp32" and r["p50_ms"]}
    for r in rows:
        base = fp32.get(_sibling(r))
        if r["speed"] and r["speed"].get("ratio_p50"):  # the protocol's verdict, when measured
            r["x_fp32"] = round(r["speed"]["ratio_p50"], 3)
        else:
            r["x_fp32"] = round(base["p50_ms"] / r["p50_ms"], 3) if base and r["p50_ms"] else None
    measured = [r for r in rows if r["status"] == MEASURED]
    mark_pareto(measured, lambda r: (r["p50_ms"], r["size_mb"], -(r["cosine"] or 0.0)),
                lambda r: (r["target"], r["model"]))
    return rows


def _sibling(row: dict[str, Any]) -> tuple[Any, ...]:
    return row["model"], row["backend"], row["target"], row["threads"]


def _row(record: dict[str, Any]) -> dict[str, Any]:
    accuracy = (record.get("quantize") or {}).get("accuracy") or {}
    candidate = accuracy.get("candidate", {})
    profile = (record.get("bench") or {}).get("profile") or {}
    size = (record.get("quantize") or {}).get("size_bytes")
    why = record.get("error") or {}
    return {
        "label": record["label"], "model": record["model"],
        # "recipe": what cells recorded before candidates named them (their records are reused)
        "candidate": record.get("candidate", record.get("recipe")),
        "backend": record["backend"], "target": record["target"],
        "threads": record["threads"], "status": record["status"],
        "precision": (record.get("quantize") or {}).get("precision"),
        "cosine": candidate.get("mean_cosine_to_fp32"),
        "task_metric": next(({"name": k, "value": v} for k, v in candidate.items()
                             if k in ("top1_accuracy", "probe_accuracy", "perplexity")), None),
        "within_budget": accuracy.get("within_budget"),
        "p50_ms": profile.get("latency_ms", {}).get("p50"),
        "speed": (record.get("bench") or {}).get("speed"),
        "p99_ms": profile.get("latency_ms", {}).get("p99"),
        "size_mb": round(size / 1e6, 3) if size else None,
        "verified": (record.get("compile") or {}).get("verification", {}).get("status"),
        "host": (record.get("bench") or {}).get("hostname"),
        "node_id": (record.get("bench") or {}).get("node_id"),
        "why": f"{why['stage']}: {why['type']}: {why['message']}" if why else
        record.get("note", ""),
    }


def _speed_cell(row: dict[str, Any]) -> str:
    """x FP32: the speed protocol's ratio with its interval and verdict, when it was run."""
    speed = row.get("speed") or {}
    if speed.get("ratio_p50") is not None:
        return describe(speed, short=True)
    return _num(row["x_fp32"], 2) + (f" ({speed['verdict']})" if speed else "")


def render_table(rows: Sequence[dict[str, Any]], title: str) -> str:
    """Markdown: a section per target, every cell with its outcome."""
    lines = [f"# Sweep {title}", "",
             "Speed-up (x FP32) is against the FP32 cell of the same model, backend, target "
             "and threads: the speed protocol's ratio, 95 % interval and verdict (both run "
             "interleaved in one process on the device). Front: on the Pareto front of its "
             "target and model (p50, size, mean cosine to FP32).", ""]
    for target in dict.fromkeys(r["target"] for r in rows):
        lines += [f"## {target}", "", "| model | candidate | backend | threads | status | cosine "
                  "| task metric | budget | p50 ms | p99 ms | x FP32 | size MB | front | host |",
                  "|---|---|---|---:|---|---:|---|---|---:|---:|---:|---:|---|---|"]
        for r in (r for r in rows if r["target"] == target):
            metric = r["task_metric"]
            lines.append(
                f"| {r['model']} | {r['candidate']} | {r['backend']} | {r['threads']} | "
                f"{r['status']} | {_num(r['cosine'], 4)} | "
                f"{metric['name'] + ' ' + _num(metric['value'], 4) if metric else '-'} | "
                f"{_budget(r['within_budget'])} | {_num(r['p50_ms'], 2)} | "
                f"{_num(r['p99_ms'], 2)} | {_speed_cell(r)} | {_num(r['size_mb'], 2)} | "
                f"{_front(r)} | {r['host'] or '-'} |")
        notes = [f"- {r['label']}: {r['why']}" for r in rows
                 if r["target"] == target and r["why"]]
        lines += ["", *notes, ""] if notes else [""]
    return "\n".join(lines)


def _num(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _budget(within: bool | None) -> str:
    return "-" if within is None else ("met" if within else "MISSED")


def _front(row: dict[str, Any]) -> str:
    if row["status"] != MEASURED:
        return "-"
    return "front" if row.get("dominated_by") is None else "dominated"


def write_reports(records: Sequence[dict[str, Any]], out: Path, title: str
                  ) -> dict[str, Path]:
    """``sweep.md`` and, when any cell was measured, ``report/`` (the benchmark report)."""
    rows = table_rows(records)
    written = {"table": out / "sweep.md"}
    write_text_atomic(written["table"], render_table(rows, title))
    runs = {r["key"]: Run({**r["bench"]["profile"], "bundle": r["label"]}, _manifest(r),
                          r["key"]) for r in records if r["status"] == MEASURED}
    if runs:
        report = build_bench_report(list(runs.values()))
        report["comparisons"] = _against_fp32(records, runs)
        written |= {f"report {k}": v for k, v in
                    write_bench_report(report, out / "report").items()}
    return written


def _against_fp32(records: Sequence[dict[str, Any]], runs: dict[str, Run]
                  ) -> list[dict[str, Any]]:
    """Each measured quantized cell against its FP32 sibling (not against the first run)."""
    rows = {r["key"]: _row(r) for r in records if r["key"] in runs}
    fp32 = {_sibling(row): key for key, row in rows.items() if row["precision"] == "fp32"}
    return [compare_pair(runs[fp32[_sibling(row)]], runs[key], cross_host=True).to_dict()
            for key, row in rows.items()
            if row["precision"] != "fp32" and _sibling(row) in fp32]


def _manifest(record: dict[str, Any]) -> dict[str, Any] | None:
    path = Path(record["compile"]["bundle"]) / "manifest.json"
    try:
        manifest: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # built on another node's disk: the report goes without size/accuracy
    return manifest
