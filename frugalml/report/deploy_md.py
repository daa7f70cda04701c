"""report.md: the decision per target first, then every candidate with its numbers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from frugalml.core.records import write_text_atomic
from frugalml.report.bench import against_fp32, decode_lines
from frugalml.runtime.host import describe_host
from frugalml.runtime.speed import describe
from frugalml.runtime.workload import Workload

COLUMNS = ("candidate", "backend", "size MB", "metric", "FP32", "value", "delta", "budget",
           "speed vs FP32", "verified")


def decision_line(target: str, result: dict[str, Any]) -> str:
    """``x86-avx512: ships int8-dynamic, 2.10x FP32 (95 % CI 1.99-2.29, faster), probe delta
    -0.20, 22.9 MB``."""
    chosen = next(c for c in result["candidates"] if c["name"] == result["shipped"])
    parts = [f"{target}: ships {result['shipped']}"]
    speed = chosen["speed"]
    if speed.get("ratio_p50") is not None and speed["verdict"] != "baseline":
        parts.append(describe(speed))
    elif not result["native"]:
        parts.append("speed not measured here")
    acc = chosen.get("accuracy") or {}
    if acc.get("delta") is not None:
        parts.append(f"{acc['metric']} delta {acc['delta']:+.4f}")
    if chosen.get("size_bytes"):
        parts.append(f"{chosen['size_bytes'] / 1e6:.1f} MB")
    return ", ".join(parts)


def cells(c: dict[str, Any]) -> list[str]:
    """One candidate's row, as text cells in COLUMNS order."""
    acc, speed = c.get("accuracy") or {}, c["speed"]

    def num(v: Any, fmt: str = ".4f") -> str:
        return "-" if v is None else format(v, fmt)

    if c["status"] != "scored":
        return [c["name"], c["backend"], "-", "-", "-", "-", "-", c["status"], "-",
                c.get("error", "")[:120]]
    timed = describe(speed, short=True)
    budget = "-" if not acc else ("met" if acc["budget_met"] else
                                  "missed: " + "; ".join(acc["failures"]))
    if acc.get("stopped_after_items"):
        budget += f" (scored on {acc['stopped_after_items']} items: the time budget ran out)"
    rise = acc.get("increase_pct_ci95")
    delta = num(acc.get("delta"), "+.4f") + (
        f" (rise 95 % CI {rise[0]:+.2f}..{rise[1]:+.2f} %)" if rise else "")
    return [c["name"] + (" (repaired)" if c.get("repaired") else ""), c["backend"],
            num(c["size_bytes"] / 1e6 if c.get("size_bytes") else None, ".1f"),
            acc.get("metric", "-"), num(acc.get("fp32")), num(acc.get("value")),
            delta, budget, timed, c.get("verified") or "-"]


def decode_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """A decoder target's generation profiles (FP32 and the shipped bundle, each in a fresh
    process) as rows of the benchmark report's decoding table."""
    return against_fp32([{**p, "label": name, "host": describe_host(p["host"])}
                         for name, p in result.get("decode_profiles", {}).items()])


def search_lines(candidate: dict[str, Any]) -> list[str]:
    """The accuracy curve of a candidate's mixed-precision search: each point tried, its
    nodes in float and its checks, the chosen one marked."""
    search = candidate.get("search")
    if not search:
        return []
    chosen = len(candidate.get("float_nodes", ()))
    kept = search.get("kept_in_int8", 0)
    lines = ["", f"{candidate['name']} mixed-precision search ({search['ranked_nodes']} nodes "
             f"ranked by sensitivity" + (f", {kept} not: the backend keeps them int8 when "
                                         "told to exclude them" if kept else "")
             + f", {search['seconds']} s, started at "
             f"{search.get('first_point', 1)} in float"
             + (f"; {search['stopped_early']}" if search["stopped_early"] else "") + "):", ""]
    for p in search["points"]:
        checks = ", ".join(f"{n} {v:.4f}" for n, v in p["checks"].items())
        mark = "meets the budget" if p["within_budget"] else "misses"
        lines.append(f"- {p['float_nodes']} in float: {checks}; {mark}"
                     + (" (chosen)" if p["float_nodes"] == chosen else ""))
    return lines


def workload_text(record: dict[str, Any]) -> str:
    """``batch 8 x 128 tokens`` (the workload every candidate was timed at); records written
    before workloads existed were timed at batch 1 on the data's shapes."""
    workload = Workload.from_dict(record.get("workload") or {})
    return workload.describe() + ("" if workload.sequence_length or workload.shapes
                                  else " at the data's natural shapes")


def ranking_line(ranking: dict[str, Any]) -> str:
    """``Ranking by workload: at batch 8 x 128 tokens, bf16-openvino 4.30x FP32; at batch 1,
    int8-dynamic-fused 2.50x: the fastest differs.``"""
    return (f"Ranking by workload: at {ranking['workload']}, {ranking['fastest']} "
            f"{ranking['ratio_p50']:.2f}x FP32; at batch 1, {ranking['fastest_at_batch_1']} "
            f"{ranking['ratio_p50_at_batch_1']:.2f}x"
            + (": the fastest differs." if ranking["differs"] else ": the same fastest."))


def render_markdown(record: dict[str, Any]) -> str:
    """The whole report as Markdown."""
    lines = [f"# Deploy report: {record['model']}", "",
             f"Task {record['task']} ({record['family']} model), metric {record['metric']}; "
             f"host {describe_host(record['host'])}; {record['seconds']} s.", "",
             f"Timed at {workload_text(record)}.", "", "## Decision", ""]
    lines += [f"- {decision_line(t, r)}" for t, r in record["targets"].items()]
    for target, result in record["targets"].items():
        lines += ["", f"## {target}", "", f"Why: {result['why']}", "",
                  *([ranking_line(result["workload_ranking"]), ""]
                    if result.get("workload_ranking") else []),
                  "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        lines += ["| " + " | ".join(x.replace("|", "/") for x in cells(c)) + " |"
                  for c in result["candidates"]]
        lines += [line for c in result["candidates"] for line in search_lines(c)]
        lines += decode_lines(decode_rows(result), "### Decoding (fresh process)")
    cal = record["calibration"]
    lines += ["", f"Data: {cal['calibration_items']} calibration / {cal['evaluation_items']} "
              f"evaluation items (split by content hash, never shared), fingerprint "
              f"{cal['fingerprint'][:16]}.", ""]
    return "\n".join(lines)


def write_markdown(out_dir: Path, record: dict[str, Any]) -> Path:
    """Write report.md atomically; return its path."""
    path = Path(out_dir) / "report.md"
    write_text_atomic(path, render_markdown(record))
    return path
