"""The table and the goals of bench/compare_peers.py."""

from __future__ import annotations

from typing import Any

_HEADER = ("| route | runs in | metric FP32 -> quantized | delta | cos / agreement | "
           "p50 1t ms | x FP32 1t | p99 1t | p50 2t ms | x FP32 2t | p99 2t | size MB (ratio) "
           "| quantize s | peak RSS MiB | budget |")


def print_model(model: str, rows: dict[str, dict[str, Any]]) -> None:
    """One markdown table for ``model``, then frugalml's gate verdict and the goals."""
    from _report import accuracy_cells

    print(f"\n### {model}\n\n{_HEADER}\n|{'---|' * 15}")
    for row in rows.values():
        if "error" in row:
            print(f"| {row['label']} | - | failed: {row['error']} |" + " |" * 12)
            continue
        lat, x = row["latency"], row["x_fp32"]
        acc = row["accuracy"]
        quantized = not row["label"].startswith("FP32")
        print(f"| {row['label']} | {'OpenVINO' if row['path'].endswith('.xml') else 'ORT'} | "
              f"{accuracy_cells(acc)} | "
              + " | ".join(f"{lat[t]['p50_ms']:.2f} | {x[t]:.2f}x | {lat[t]['p99_ms']:.2f}"
                           for t in (1, 2))
              + f" | {row['size_bytes'] / 1e6:.1f} ({row['size_ratio']:.2f}) | "
              f"{row['seconds']:.0f} | {row.get('peak_rss_mib', 0):.0f} | "
              f"{('met' if acc['within_budget'] else 'MISSED') if quantized else '-'} |")
    for line in goals(rows):
        print(line)


def goals(rows: dict[str, dict[str, Any]]) -> list[str]:
    """frugalml's speed gate on this run, and the two goals of issue 12 for its INT8 row."""
    from frugalml.runtime.speed import from_rounds

    ours = rows.get("frugalml-int8")
    if not ours or "latency" not in ours:
        return []
    fp32 = rows["fp32-ort"]["latency"][1]["round_p50_ms"]
    verdict = from_rounds(fp32, ours["latency"][1]["round_p50_ms"])
    ships = "INT8" if verdict.faster and ours["accuracy"]["within_budget"] else "FP32"
    peers = [r for n, r in rows.items() if "latency" in r and not n.startswith(("fp32",
             "frugalml")) and r["accuracy"]["within_budget"] and r.get("precision") == "int8"]
    best = max(peers, key=lambda r: r["x_fp32"][1], default=None)
    lines = [f"frugalml speed gate (1 thread): {verdict.why}; ships {ships}",
             f"goal INT8 >= 1.5x FP32 at 1 thread, budget met: {ours['x_fp32'][1]:.2f}x, "
             f"budget {'met' if ours['accuracy']['within_budget'] else 'missed'}: "
             + ("MET" if ours["x_fp32"][1] >= 1.5 and ours["accuracy"]["within_budget"]
                else "MISSED")]
    if best is not None:
        lines.append(f"goal no slower than the best peer default within budget ({best['label']}"
                     f" {best['x_fp32'][1]:.2f}x): "
                     + ("MET" if ours["x_fp32"][1] >= best["x_fp32"][1] else "MISSED"))
    else:
        lines.append("no peer default met the INT8 budget on this run")
    return lines
