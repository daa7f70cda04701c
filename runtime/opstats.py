"""Per-op view of a profiled run: time by op type and by node, and quantized vs float kernels."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from frugalml.runtime.backends._protocol import OpEvent
from frugalml.runtime.kernels import kernel_class

TOP_NODES = 25


def summarize_ops(events: list[OpEvent], runs: int) -> dict[str, Any]:
    """Aggregate backend node events of ``runs`` inferences into per-run milliseconds.

    Returns ``by_type`` (every op type, slowest first), ``by_node`` (the slowest
    ``TOP_NODES`` nodes) and ``kernels``: how many executed compute nodes ran quantized or in
    float, and the share of op time each took.
    """
    total_us = sum(e.total_us for e in events) or 1.0
    by_type: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0])
    kernels = {"quantized": 0, "float": 0, "other": 0}
    kernel_us = {"quantized": 0.0, "float": 0.0, "other": 0.0}
    for e in events:
        cls = kernel_class(e.op_type, e.exec_type)
        by_type[(e.op_type, cls)][0] += e.total_us
        by_type[(e.op_type, cls)][1] += 1
        kernels[cls] += 1
        kernel_us[cls] += e.total_us
    types = [{"op_type": op, "kernel": cls, "nodes": int(n), "ms_per_run": us / runs / 1e3,
              "share": us / total_us} for (op, cls), (us, n) in by_type.items()]
    nodes = [{"node": e.node, "op_type": e.op_type, "exec_type": e.exec_type,
              "kernel": kernel_class(e.op_type, e.exec_type),
              "ms_per_run": e.total_us / runs / 1e3, "share": e.total_us / total_us}
             for e in sorted(events, key=lambda e: -e.total_us)[:TOP_NODES]]
    return {
        "runs": runs,
        "by_type": sorted(types, key=lambda t: -t["ms_per_run"]),
        "by_node": nodes,
        "kernels": {**kernels, **{f"{k}_share": v / total_us for k, v in kernel_us.items()}},
    }


def kernels_ran(events: list[OpEvent]) -> dict[str, Any]:
    """Compute nodes that ran quantized or in float, and the float ones by name: in a
    quantized bundle those are where the backend fell back (or the recipe kept float).

    Where the backend names its kernels (OpenVINO's ``exec_type``, e.g.
    ``brgconv_avx512_amx_bf16``), ``precisions`` counts compute nodes by the precision their
    kernel ran at and ``amx_nodes`` those on AMX tiles: "bf16 on AMX" is read, not assumed.
    """
    ran: dict[str, Any] = {"quantized": set(), "float": set()}
    precisions: dict[str, set[str]] = defaultdict(set)
    amx = set()
    for e in events:
        cls = kernel_class(e.op_type, e.exec_type)
        if cls not in ran:
            continue
        ran[cls].add(e.node)
        if e.exec_type:
            precisions[e.exec_type.rsplit("_", 1)[-1].upper()].add(e.node)
            if "_amx" in e.exec_type:
                amx.add(e.node)
    return {"quantized": len(ran["quantized"]), "float": len(ran["float"]),
            "float_nodes": sorted(ran["float"]),
            **({"precisions": {k: len(v) for k, v in sorted(precisions.items())},
                "amx_nodes": len(amx)} if precisions else {})}
