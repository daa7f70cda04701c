"""One self-contained HTML page: plots as inline SVG (matplotlib), no network needed to open.

Plots: latency percentiles per run (a CDF through the measured percentiles), throughput by
concurrent streams, cold-start breakdown, top ops, quantized vs float kernels, and the
latency-size Pareto chart (accuracy in the labels; dominated runs hollow).
"""

from __future__ import annotations

import html
import io
from collections.abc import Callable
from typing import Any

from frugalml.errors import require
from frugalml.report.bench import render_bench_markdown

PLOTS = ("latency", "throughput", "cold-start", "top-ops", "kernels", "pareto")


def svg(draw: Callable[[Any], None], height: float = 3.2) -> str:
    import matplotlib

    matplotlib.use("svg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, height))
    try:
        draw(ax)
        fig.tight_layout()
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None})
    finally:
        plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]


def latency_plot(runs: list[dict[str, Any]]) -> Callable[[Any], None]:
    def draw(ax: Any) -> None:
        for r in runs:
            lat = r["latency_ms"]
            points = [(lat["min"], 0)] + [(lat[f"p{q}"], q) for q in (50, 90, 95, 99)
                                          if f"p{q}" in lat] + [(lat["max"], 100)]
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=r["label"])
        ax.set(xlabel="latency (ms)", ylabel="percentile", title="Latency distribution")
        ax.legend(fontsize=7)
    return draw


def _throughput(runs: list[dict[str, Any]]) -> Callable[[Any], None]:
    def draw(ax: Any) -> None:
        for r in runs:
            streams = sorted(r["streams_per_s"].items(), key=lambda kv: int(kv[0]))
            ax.plot([int(s) for s, _ in streams], [v for _, v in streams], marker="o",
                    label=r["label"])
        ax.set(xlabel="concurrent streams", ylabel="inferences / s", title="Throughput")
        ax.legend(fontsize=7)
    return draw


def _cold_start(runs: list[dict[str, Any]]) -> Callable[[Any], None]:
    def draw(ax: Any) -> None:
        names = [r["label"] for r in runs]
        left = [0.0] * len(runs)
        for phase in ("verify", "compile", "first_inference"):
            values = [r["cold_start_ms"].get(phase, 0.0) for r in runs]
            ax.barh(names, values, left=left, label=phase)
            left = [a + b for a, b in zip(left, values, strict=True)]
        ax.set(xlabel="ms", title="Cold start")
        ax.legend(fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
    return draw


def top_ops(runs: list[dict[str, Any]]) -> Callable[[Any], None]:
    def draw(ax: Any) -> None:
        labels, values = [], []
        for r in runs:
            for op in r["top_ops"][:5]:
                labels.append(f"{op['op_type']} ({op['kernel']}) · {r['backend']}")
                values.append(op["ms_per_run"])
        ax.barh(labels[::-1], values[::-1])
        ax.set(xlabel="ms per run", title="Top ops per run")
        ax.tick_params(axis="y", labelsize=6)
    return draw


def _kernels(runs: list[dict[str, Any]]) -> Callable[[Any], None]:
    def draw(ax: Any) -> None:
        names = [r["label"] for r in runs]
        quantized = [r["kernels"].get("quantized", 0) for r in runs]
        floats = [r["kernels"].get("float", 0) for r in runs]
        ax.barh(names, quantized, label="quantized kernels")
        ax.barh(names, floats, left=quantized, label="float kernels")
        ax.set(xlabel="executed compute nodes", title="Quantized vs float kernels")
        ax.legend(fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
    return draw


def _pareto(runs: list[dict[str, Any]]) -> Callable[[Any], None]:
    def draw(ax: Any) -> None:
        for r in runs:
            size = r["size_mb"] or 0.0
            hollow = r["dominated_by"] is not None
            ax.scatter([r["latency_ms"]["p50"]], [size], s=80,
                       facecolors="none" if hollow else "C0", edgecolors="C0")
            acc = f", acc {r['accuracy']:.3f}" if r["accuracy"] is not None else ""
            ax.annotate(f"{r['label'][:40]}{acc}{' (dominated)' if hollow else ''}",
                        (r["latency_ms"]["p50"], size), fontsize=6)
        ax.set(xlabel="p50 latency (ms)", ylabel="model size (MB)",
               title="Pareto: latency vs size (filled = on the front)")
    return draw


def decode_plot(decoding: list[dict[str, Any]]) -> Callable[[Any], None]:
    """Decode tokens/s per decode profile, with the prefill's time to first token."""
    def draw(ax: Any) -> None:
        labels = [f"{r['label'][:40]} ({r['precision']})" for r in decoding]
        rates = [r["decode_tokens_per_s"] for r in decoding]
        ax.barh(labels, rates, color="C2")
        for i, r in enumerate(decoding):
            ax.annotate(f" {r['decode_tokens_per_s']:.1f}/s, first token "
                        f"{r['first_token_ms']['p50']:.0f} ms", (rates[i], i), fontsize=6,
                        va="center")
        ax.set(xlabel="decode tokens/s (higher is better)", title="Decoding")
    return draw


def render_bench_html(report: dict[str, Any]) -> str:
    """The whole page as one string."""
    require("matplotlib", extra="toolchain")
    runs = report["runs"]
    drawers = {"latency": latency_plot(runs), "throughput": _throughput(runs),
               "cold-start": _cold_start(runs), "top-ops": top_ops(runs),
               "kernels": _kernels(runs), "pareto": _pareto(runs)} if runs else {}
    if report.get("decoding"):
        drawers["decoding"] = decode_plot(report["decoding"])
    figures = "\n".join(
        f'<figure id="plot-{name}">{svg(draw, 4.0 if name == "top-ops" else 3.2)}</figure>'
        for name, draw in drawers.items())
    markdown = html.escape(render_bench_markdown(report))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>frugalml benchmark report</title>
<style>body{{font-family:sans-serif;max-width:60rem;margin:1rem auto}}
figure{{margin:1rem 0}} pre{{white-space:pre-wrap;font-size:.8rem}}</style></head>
<body><h1>frugalml benchmark report</h1>
{figures}
<h2>Tables</h2><pre id="tables">{markdown}</pre>
<script>console.log("frugal-report plots=" + document.querySelectorAll("figure svg").length);
</script></body></html>
"""
