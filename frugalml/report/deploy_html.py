"""report.html: the decision per target, the candidates as a table, a latency-accuracy plot
per target, per-op time of the shipped and FP32 bundles (and, for a decoder, their decode
tokens/s), and the host. One self-contained page (inline SVG from matplotlib), readable
offline."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from frugalml.core.records import write_text_atomic
from frugalml.errors import require
from frugalml.report.bench_html import decode_plot, latency_plot, svg, top_ops
from frugalml.report.deploy_md import (
    COLUMNS,
    cells,
    decision_line,
    decode_rows,
    ranking_line,
    workload_text,
)
from frugalml.runtime.host import describe_host


def _points(result: dict[str, Any]) -> list[tuple[str, float, float, float]]:
    """(name, p50 ms, metric value, MB) of every timed candidate and FP32."""
    points = []
    for c in result["candidates"]:
        speed, acc = c["speed"], c.get("accuracy") or {}
        p50 = speed.get("candidate_p50_ms") if c["name"] != "fp32" else next(
            (x["speed"].get("baseline_p50_ms") for x in result["candidates"]
             if x["speed"].get("baseline_p50_ms")), None)
        if p50 and acc.get("value") is not None:
            points.append((c["name"], p50, acc["value"], (c["size_bytes"] or 0) / 1e6))
    return points


def _front(points: list[tuple[str, float, float, float]], higher_better: bool) -> set[str]:
    """Names no other point beats on both latency and the metric."""
    def beats(a: tuple[str, float, float, float], b: tuple[str, float, float, float]) -> bool:
        better = a[2] >= b[2] if higher_better else a[2] <= b[2]
        return a[1] <= b[1] and better and (a[1], a[2]) != (b[1], b[2])
    return {p[0] for p in points if not any(beats(q, p) for q in points)}


def _tradeoff(result: dict[str, Any], metric: str) -> str:
    """The latency-accuracy plot: marker area by size, front filled, labels inside."""
    points = _points(result)
    if not points:
        return "<p>No candidate was timed on this target (speed not measured here).</p>"
    front = _front(points, higher_better=metric != "perplexity")

    def draw(ax: Any) -> None:
        for name, p50, value, mb in points:
            on = name in front
            ax.scatter([p50], [value], s=40 + 4 * mb, edgecolors="C0",
                       facecolors="C0" if on else "none")
            ax.annotate(f"{name} ({mb:.0f} MB)", (p50, value), fontsize=7,
                        xytext=(4, 4), textcoords="offset points")
        ax.margins(0.25)
        ax.set(xlabel="p50 latency (ms, speed protocol)", ylabel=metric,
               title="Latency vs accuracy (filled: on the front; area: size)")
    return f"<figure>{svg(draw)}</figure>"


def _table(result: dict[str, Any]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)
    rows = "".join(
        f'<tr class="{"shipped" if c["name"] == result["shipped"] else ""}">'
        + "".join(f"<td>{html.escape(x)}</td>" for x in cells(c)) + "</tr>"
        for c in result["candidates"])
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def _profiles(result: dict[str, Any]) -> str:
    """Latency and per-op plots of the profiled bundles (FP32 and the shipped one)."""
    runs = [{"label": name, "backend": f"{name}, {p['backend']}", "latency_ms": p["latency_ms"],
             "top_ops": p.get("ops", {}).get("by_type", [])[:8]}
            for name, p in result.get("profiles", {}).items()]
    decoding = decode_rows(result)
    generation = (f'<h3>Decoding (fresh process)</h3><figure class="decoding">'
                  f'{svg(decode_plot(decoding))}</figure>') if decoding else ""
    if not runs:
        return generation
    return (f'<h3>Profiles (fresh process)</h3><figure class="ops">'
            f'{svg(top_ops(runs), 4.0)}</figure><figure>{svg(latency_plot(runs))}</figure>'
            + generation)


def render_html(record: dict[str, Any]) -> str:
    """The whole page as one string."""
    require("matplotlib", extra="toolchain")
    decisions = "".join(f"<li>{html.escape(decision_line(t, r))}</li>"
                        for t, r in record["targets"].items())
    sections = "".join(
        f'<section id="target-{html.escape(t)}"><h2>{html.escape(t)}</h2>'
        f'<p class="why">{html.escape(r["why"])}</p>'
        + (f'<p class="ranking">{html.escape(ranking_line(r["workload_ranking"]))}</p>'
           if r.get("workload_ranking") else "") + f'{_table(r)}'
        f'{_tradeoff(r, record["metric"] or "")}{_profiles(r)}</section>'
        for t, r in record["targets"].items())
    host = record["host"]
    isa = ", ".join(f for f in host.get("flags", []) if f.startswith(("avx", "fma", "amx",
                                                                      "asimd", "sve")))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>frugalml deploy: {html.escape(record['model'])}</title>
<style>body{{font-family:sans-serif;max-width:72rem;margin:1rem auto}}
table{{border-collapse:collapse;font-size:.8rem}}td,th{{border:1px solid #ccc;padding:.2rem .4rem}}
tr.shipped{{background:#e6f4ea;font-weight:bold}}</style></head>
<body><h1>Deploy: {html.escape(record['model'])}</h1>
<ul id="decision">{decisions}</ul>
<p>Task {html.escape(record['task'])}, metric {html.escape(str(record['metric']))};
timed at {html.escape(workload_text(record))}.</p>
{sections}
<h2>Host</h2><p id="host">{html.escape(describe_host(host))};
vendor {html.escape(str(host.get('vendor')))},
family {host.get('family')}, model {host.get('model')}, stepping {host.get('stepping')};
{host.get('logical_cores')} logical cores; ISA {html.escape(isa)}</p>
<script>console.log("frugal-deploy-report plots=" + document.querySelectorAll("figure svg").length);
</script></body></html>
"""


def write_html(out_dir: Path, record: dict[str, Any]) -> Path:
    """Write report.html atomically; return its path."""
    path = Path(out_dir) / "report.html"
    write_text_atomic(path, render_html(record))
    return path
