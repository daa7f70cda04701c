"""Decide whether the INT8 bundle ships, and write report.json and report.md beside the bundles."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from frugalml._records import write_json_atomic
from frugalml.quantize.accuracy import Check
from frugalml.quantize.recipe import Budget
from frugalml.runtime.host import describe_host

_VNNI_FLAGS = ("avx512_vnni", "avx_vnni")


def _speed_why(host: dict[str, Any], speed: dict[str, Any], kernels: dict[str, int]) -> str:
    why = f"By the speed protocol, {speed['why']}."
    if kernels.get("MatMulNBits"):
        why += (f" {kernels['MatMulNBits']} weight-only layers (kept off int8 activations for "
                "accuracy) run as MatMulNBits, which dequantizes its weights on every run.")
    if not set(host.get("flags", ())) & set(_VNNI_FLAGS):
        why += (f" This host ({describe_host(host)}) has no VNNI: its INT8 dot product is "
                "vpmaddubsw+vpmaddwd, at best about 1.33x the FP32 FMA peak, and quantizing "
                "activations around each layer eats that margin; whether any is left depends "
                "on the microarchitecture (measured: 0.9x on Zen 2, 1.5x on Zen 3).")
    return why


def decide(budget: Budget, fp32: dict[str, Any], int8: dict[str, Any],
           host: dict[str, Any], speed: dict[str, Any]) -> tuple[Check, ...]:
    """Compare measured INT8 metrics with the budget; every failing check says why.

    ``speed`` is the speed protocol's verdict (INT8 against FP32, interleaved in one process).
    """
    size_ratio = int8["size_bytes"] / fp32["size_bytes"]
    cos, drop = int8["mean_cosine"], int8["accuracy_drop_points"]
    checks = [
        Check(name="mean cosine to FP32", value=cos, limit=budget.cosine_limit,
              passed=cos >= budget.cosine_limit,
              why="" if cos >= budget.cosine_limit else
              "embeddings drift from FP32; keep more layers in float (recipe)"),
        Check(name="probe accuracy drop (points)", value=drop,
              limit=budget.max_accuracy_drop_points,
              passed=drop <= budget.max_accuracy_drop_points,
              why="" if drop <= budget.max_accuracy_drop_points else
              "the downstream classifier loses accuracy on INT8 embeddings"),
        Check(name="size vs FP32", value=size_ratio, limit=budget.max_size_ratio,
              passed=size_ratio <= budget.max_size_ratio,
              why="" if size_ratio <= budget.max_size_ratio else
              "too many weights stay float"),
    ]
    if budget.must_be_faster:
        faster = speed["verdict"] == "faster"
        checks.append(Check(name="p50 speed-up vs FP32 (95 % CI above 1 + threshold)",
                            value=speed["ratio_p50"] or 0.0,
                            limit=round(1.0 + speed["threshold"], 4), passed=faster,
                            why="" if faster else _speed_why(host, speed, int8["kernels"])))
    return tuple(checks)


def build_report(
    *, model: str, target: dict[str, Any], host: dict[str, Any], fp32: dict[str, Any],
    int8: dict[str, Any], checks: tuple[Check, ...], bundles: dict[str, str],
    calibration: dict[str, Any], export: dict[str, Any], speed: dict[str, Any],
) -> dict[str, Any]:
    """Everything the report shows, as plain JSON."""
    ships_int8 = all(c.passed for c in checks)
    return {
        "schema_version": 1, "model": model, "target": target, "host": host,
        "export": export, "calibration": calibration, "fp32": fp32, "int8": int8,
        "speedup_p50": speed["ratio_p50"], "speed": speed,
        "checks": [dataclasses.asdict(c) for c in checks],
        "shipped": "int8" if ships_int8 else "fp32", "bundles": bundles,
        "shipped_bundle": bundles["int8" if ships_int8 else "fp32"],
    }


def _row(label: str, fp32: str, int8: str) -> str:
    return f"| {label} | {fp32} | {int8} |"


def render_markdown(report: dict[str, Any]) -> str:
    """Human-readable side-by-side of FP32 and INT8 with the ship decision."""
    f, q, host = report["fp32"], report["int8"], report["host"]
    lf, lq = f["latency_ms"], q["latency_ms"]
    lines = [
        f"# {report['model']} on {report['target']['name']}", "",
        f"Host: {describe_host(host)} ({host['machine']}, {host['logical_cores']} logical cores, "
        f"governor {host['governor']}); ISA: "
        + (", ".join(f for f in host["flags"] if f.startswith(("avx", "fma", "sse4", "amx")))),
        "", "| | FP32 | INT8 |", "|---|---|---|",
        _row("size (MB)", f"{f['size_bytes'] / 1e6:.1f}", f"{q['size_bytes'] / 1e6:.1f}"),
        *(_row(f"latency {k} (ms)", f"{lf[k]:.2f}", f"{lq[k]:.2f}")
          for k in ("p50", "p90", "p99", "mean", "std")),
        _row("throughput (/s)", f"{f['throughput_per_s']:.1f}", f"{q['throughput_per_s']:.1f}"),
        _row("cold start: load + first run (ms)",
             f"{f['cold_start_ms']['load']:.0f} + {f['cold_start_ms']['first_inference']:.0f}",
             f"{q['cold_start_ms']['load']:.0f} + {q['cold_start_ms']['first_inference']:.0f}"),
        _row("peak RSS (MiB)", f"{f['peak_rss_mib']:.0f}", f"{q['peak_rss_mib']:.0f}"),
        _row("probe accuracy (%)", f"{100 * f['probe_accuracy']:.2f}",
             f"{100 * q['probe_accuracy']:.2f}"),
        _row("mean / min cosine to FP32", "1 / 1",
             f"{q['mean_cosine']:.4f} / {q['min_cosine']:.4f}"),
        _row("int8 / float matmul kernels", f"{f['kernels'].get('int8', 0)} / "
             f"{f['kernels'].get('float', 0)}",
             f"{q['kernels'].get('int8', 0)} / {q['kernels'].get('float', 0)}"),
        "", _speed_line(report["speed"], q["input_shapes"]),
        f"Accuracy: logistic-regression probe fitted on FP32 embeddings of "
        f"{q['probe_train_items']} evaluation texts, scored on {q['probe_test_items']} others; "
        f"drop {q['accuracy_drop_points']:+.2f} points.", "", "## Ship decision", "",
    ]
    for c in report["checks"]:
        mark = "pass" if c["passed"] else "FAIL"
        lines.append(f"- {mark}: {c['name']} = {c['value']:.4f} (limit {c['limit']})"
                     + (f": {c['why']}" if c["why"] else ""))
    shipped = report["shipped"].upper()
    lines += ["", f"Shipped: **{shipped}** bundle at `{report['shipped_bundle']}`"]
    if report["shipped"] == "fp32":
        lines.append("The INT8 bundle was built and measured but is not shipped: it failed the "
                     "checks above on this target.")
    return "\n".join(lines) + "\n"


def _speed_line(speed: dict[str, Any], shapes: dict[str, Any]) -> str:
    """The one speed-up number of the report, with its interval and how it was measured."""
    if speed["ratio_p50"] is None:
        return f"p50 speed-up INT8 vs FP32: not measured ({speed['why']})"
    low, high = speed["ci95"]
    settings = speed.get("settings", {})
    line = (f"p50 speed-up INT8 vs FP32: **{speed['ratio_p50']:.2f}x** (95 % CI {low:.2f}-"
            f"{high:.2f}, {speed['verdict']}; {speed['rounds']} interleaved rounds in one "
            f"process, input {shapes}, threads {settings.get('threads', '?')}, spinning "
            f"{'on' if settings.get('spinning') else 'off'}). The latency rows above come "
            "from separate fresh-process profiles.")
    if speed.get("repeated_rounds"):
        line += f" Note: {speed['repeated_rounds']} rounds were repeated: the machine was busy."
    return line


def deploy_record(report: dict[str, Any], report_md: Path, report_html: Path) -> dict[str, Any]:
    """deploy.json: per target the candidates with accuracy, speed (the protocol's verdict)
    and the shipped choice with its reason (the shape the deploy engine writes)."""
    budget_met = all(c["passed"] for c in report["checks"] if not c["name"].startswith("p50"))
    failed = [f"{c['name']} {c['value']:.4f} (limit {c['limit']})"
              for c in report["checks"] if not c["passed"]]
    speed = {k: report["speed"].get(k) for k in ("ratio_p50", "ci95", "verdict")}

    def candidate(name: str, metrics: dict[str, Any], quantized: bool) -> dict[str, Any]:
        return {"name": name, "recipe": "int8-static" if quantized else "fp32",
                "backend": "onnxruntime", "precision": name, "size_bytes": metrics["size_bytes"],
                "accuracy": {"metric": "probe accuracy", "fp32": report["fp32"]["probe_accuracy"],
                             "value": metrics["probe_accuracy"],
                             "delta": metrics["probe_accuracy"] - report["fp32"]["probe_accuracy"],
                             "budget_met": budget_met if quantized else True},
                "speed": speed if quantized else {"ratio_p50": 1.0, "ci95": [1.0, 1.0],
                                                  "verdict": "baseline"},
                "verified": "natively", "bundle": report["bundles"][name]}

    shipped = report["shipped"]
    why = ("INT8 met its budget and the speed protocol found it faster: "
           f"{report['speed']['why']}" if shipped == "int8" else
           "FP32 shipped: INT8 failed " + "; ".join(failed))
    return {"schema_version": 1, "host": report["host"], "model": report["model"],
            "task": "sentence-embedding", "metric": "probe accuracy and mean cosine to FP32",
            "targets": {report["target"]["name"]: {
                "shipped": shipped, "why": why, "bundle": report["shipped_bundle"],
                "candidates": [candidate("fp32", report["fp32"], False),
                               candidate("int8", report["int8"], True)]}},
            "report_html": str(report_html), "report_md": str(report_md)}


def write_report(out_dir: Path, report: dict[str, Any]) -> tuple[Path, Path]:
    """Write report.json and report.md atomically; return their paths."""
    json_path, md_path = out_dir / "report.json", out_dir / "report.md"
    write_json_atomic(json_path, report)
    tmp = md_path.with_name(md_path.name + ".tmp")
    tmp.write_text(render_markdown(report))
    tmp.replace(md_path)
    return json_path, md_path
