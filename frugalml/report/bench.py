"""The benchmark report: one JSON (the single source) rendered into Markdown and HTML.

It answers "which artifact should I ship on which device": every run's latency, throughput,
cold start, memory, kernels and top ops, its host, comparisons with the baseline, and the
accuracy-latency-size Pareto front with dominated runs marked; for decoders, their decode
profiles (time to first token, tokens/s, per-token percentiles, memory, KV cache).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from frugalml.report.compare import compare_runs
from frugalml.report.runs import Run
from frugalml.runtime.speed import describe

SCHEMA_VERSION = 1


def build_bench_report(runs: Sequence[Run], *, speed: dict[str, Any] | None = None
                       ) -> dict[str, Any]:
    """Collect runs, hosts, comparisons and the Pareto front into one JSON-able dict.

    ``speed``: the speed protocol's verdict for the pair, when one was measured; it then is
    the report's only speed-up (the fresh-process profiles' ratios are not shown beside it).
    """
    hosts: dict[str, dict[str, Any]] = {}
    entries, decoding = [], []
    for run in runs:
        host_id = _host(run.profile["host"], hosts)
        if run.decoding:
            decoding.append(_decode_entry(run, host_id))
            continue
        entries.append({
            "label": run.label, "key": run.key, "host": host_id, "origin": run.origin,
            "backend": run.profile["backend"], "bundle": run.profile["bundle"],
            "precision": (run.manifest or {}).get("precision"),
            "target": (run.manifest or {}).get("target", {}).get("name"),
            "latency_ms": run.profile["latency_ms"],
            "streams_per_s": run.profile.get("streams_per_s", {}),
            "throughput_per_s": run.profile.get("throughput_per_s"),
            "cold_start_ms": run.profile["cold_start_ms"],
            "peak_rss_mib": run.profile.get("peak_rss_mib"),
            "model_mib": run.profile.get("model_mib"),
            "kernels": run.profile.get("ops", {}).get("kernels", {}),
            "top_ops": run.profile.get("ops", {}).get("by_type", [])[:8],
            "size_mb": run.size_mb, "accuracy": run.accuracy,
            "settings": run.profile.get("settings", {}),
        })
    _mark_pareto(entries)
    latency = [r for r in runs if not r.decoding]
    comparisons = [] if speed else [c.to_dict() for c in compare_runs(latency, cross_host=True)]
    return {"schema_version": SCHEMA_VERSION, "hosts": hosts, "runs": entries,
            "decoding": against_fp32(decoding), "comparisons": comparisons, "speed": speed}


def _host(host: dict[str, Any], hosts: dict[str, dict[str, Any]]) -> str:
    """The host's id in the report, recording what the report says of it."""
    host_id = f"{host['cpu_model']} / {host.get('machine', '')} / {host['logical_cores']}c"
    hosts[host_id] = {k: host.get(k) for k in (
        "cpu_model", "vendor", "family", "model", "stepping", "microarchitecture",
        "machine", "logical_cores", "governor", "python", "libraries")}
    hosts[host_id]["isa"] = [f for f in host.get("flags", []) if f.startswith(
        ("avx", "fma", "amx", "sse4", "asimd", "sve", "neon"))]
    return host_id


def _decode_entry(run: Run, host_id: str) -> dict[str, Any]:
    p = run.profile
    return {"label": run.label, "key": run.key, "host": host_id, "origin": run.origin,
            "bundle": p["bundle"], "precision": p.get("precision"), "settings": p["settings"],
            **{k: p.get(k) for k in ("first_token_ms", "decode_tokens_per_s", "token_ms",
                                     "peak_rss_mib", "kv_cache_bytes", "model_bytes")}}


def against_fp32(decoding: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each decode run's tokens/s over an FP32 run's on the same host at the same threads,
    prompt and length (separate runs: a ratio to read, not the speed protocol's verdict)."""
    def alike(r: dict[str, Any]) -> tuple[Any, ...]:
        s = r["settings"]
        return (r["host"], s.get("threads"), s.get("prompt_tokens"), s.get("new_tokens"))

    fp32 = {alike(r): r["decode_tokens_per_s"] for r in decoding if r["precision"] == "fp32"}
    for r in decoding:
        base = fp32.get(alike(r))
        r["x_fp32"] = r["decode_tokens_per_s"] / base if base else None
    return decoding


def _mark_pareto(entries: list[dict[str, Any]]) -> None:
    """``dominated_by``: a run at least as good on latency, size and accuracy, better on one,
    on the same target and host (latencies on different devices do not compete)."""
    mark_pareto(entries, lambda e: (e["latency_ms"]["p50"], e["size_mb"] or 0.0,
                                    -(e["accuracy"] or 0.0)),
                lambda e: (e.get("target"), e["host"]))


def mark_pareto(entries: list[dict[str, Any]], axes: Callable[[dict[str, Any]], tuple[float, ...]],
                group: Callable[[dict[str, Any]], Any]) -> None:
    """Set each entry's ``dominated_by`` to the label of an entry of the same ``group`` that
    is no worse on every axis (lower is better) and better on one, or None (on the front)."""
    for e in entries:
        mine = axes(e)
        e["dominated_by"] = next(
            (o["label"] for o in entries if o is not e and group(o) == group(e)
             and all(a <= b for a, b in zip(axes(o), mine, strict=True))
             and axes(o) != mine), None)


def render_bench_markdown(report: dict[str, Any]) -> str:
    """A readable summary: hosts, a percentile table, throughput, cold start, comparisons."""
    lines = ["# Benchmark report", "", "## Hosts", ""]
    for host_id, host in report["hosts"].items():
        libs = ", ".join(f"{k} {v}" for k, v in (host.get("libraries") or {}).items())
        lines.append(f"- **{host_id}** ({host.get('microarchitecture') or 'unknown'}, family "
                     f"{host.get('family')} model {host.get('model')}): "
                     f"ISA {' '.join(host['isa']) or 'unknown'}; "
                     f"governor {host.get('governor')}; {libs}")
    if report["runs"]:
        lines += _latency_lines(report["runs"])
    lines += decode_lines(report.get("decoding", []))
    speed = report.get("speed")
    if speed and speed.get("ratio_p50"):
        lines += ["", "## Speed-up (speed protocol)", "",
                  f"INT8 runs at **{describe(speed)}**; {speed['rounds']} interleaved rounds "
                  f"in one process, {speed['repeated_rounds']} repeated for load."]
    if report["comparisons"]:
        lines += ["", "## Against the baseline", "",
                  "| candidate | baseline | p50 ratio [95% CI] | p99 ratio | noise | verdict |",
                  "|---|---|---:|---:|---:|---|"]
        for c in report["comparisons"]:
            lines.append(
                f"| {c['candidate']} | {c['baseline']} | {c['p50_ratio']:.3f} "
                f"[{c['p50_ratio_low']:.3f}, {c['p50_ratio_high']:.3f}] | {c['p99_ratio']:.3f} | "
                f"±{c['noise']:.1%} | {'REGRESSION' if c['regression'] else 'ok'} |")
    return "\n".join(lines) + "\n"


def _latency_lines(runs: list[dict[str, Any]]) -> list[str]:
    """The latency, throughput, cold start, memory and kernel tables of the latency runs."""
    lines: list[str] = []
    lines += ["", "## Latency (ms)", "",
              "| run | p50 [95% CI] | p90 | p95 | p99 | max | runs | size MB | accuracy | "
              "Pareto |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in runs:
        lat = r["latency_ms"]
        ci = lat.get("p50_ci95", [lat["p50"], lat["p50"]])
        lines.append(
            f"| {r['label']} | {lat['p50']:.2f} [{ci[0]:.2f}, {ci[1]:.2f}] | {lat['p90']:.2f} | "
            f"{lat.get('p95', float('nan')):.2f} | {lat['p99']:.2f} | "
            f"{lat.get('max', float('nan')):.2f} | {r['settings'].get('runs', '')} | "
            f"{_num(r['size_mb'])} | {_num(r['accuracy'], 3)} | "
            f"{'dominated' if r['dominated_by'] else 'front'} |")
    lines += ["", "## Throughput, cold start, memory, kernels", "",
              "| run | /s by streams | verify + compile + first (ms) | peak RSS MiB | "
              "quantized / float kernels |", "|---|---|---|---:|---|"]
    for r in runs:
        cold, k = r["cold_start_ms"], r["kernels"]
        streams = ", ".join(f"{s}: {v:.1f}" for s, v in r["streams_per_s"].items())
        lines.append(
            f"| {r['label']} | {streams} | {cold.get('verify', 0):.0f} + "
            f"{cold.get('compile', cold.get('load', 0)):.0f} + {cold['first_inference']:.1f} | "
            f"{_num(r['peak_rss_mib'], 0)} | {k.get('quantized', '-')} / {k.get('float', '-')} |")
    return lines


def decode_lines(decoding: list[dict[str, Any]], title: str = "## Decoding") -> list[str]:
    """The decoding table: one row per decode profile."""
    if not decoding:
        return []
    lines = ["", title, "",
             "| run | precision | threads | prompt + new | first token ms p50 | decode "
             "tokens/s | x FP32 run | token ms p50 / p99 | peak RSS MiB | KV cache MiB | "
             "model MB |", "|---|---|---:|---|---:|---:|---:|---|---:|---:|---:|"]
    for r in decoding:
        s, t = r["settings"], r["token_ms"] or {}
        ratio = "-" if r["x_fp32"] is None else f"{r['x_fp32']:.2f}x"
        lines.append(
            f"| {r['label']} | {r['precision']} | {s.get('threads')} | "
            f"{s.get('prompt_tokens')} + {s.get('new_tokens')} | "
            f"{r['first_token_ms']['p50']:.1f} | {r['decode_tokens_per_s']:.1f} | {ratio} | "
            f"{_num(t.get('p50'), 2)} / {_num(t.get('p99'), 2)} | "
            f"{_num(r['peak_rss_mib'], 0)} | {_num((r['kv_cache_bytes'] or 0) / 2**20)} | "
            f"{_num((r['model_bytes'] or 0) / 1e6)} |")
    return lines


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"
