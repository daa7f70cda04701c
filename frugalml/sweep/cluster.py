"""Sweep cells as Ray tasks, on an in-process Ray or an existing cluster: frugalml's only
import of Ray (the ``cluster`` extra).

Build stages (export, quantize, compile) ask for one CPU and run wherever one is free.
Benchmarks ask for the custom resource ``target:<name>``, of which a device node advertises
one, so each runs only on a device of its target and never beside another benchmark there;
on the embedded Ray a benchmark also takes every CPU, so no build disturbs its timing. Ray
moves the bundle to the device through its object store; the bench stage checks its hash.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from typing import Any

from frugalml.errors import SweepError, one_line, require
from frugalml.sweep import stages
from frugalml.sweep.plan import MEASURED, CellPlan, CellStore
from frugalml.sweep.spec import SweepSpec

RESOURCE_PREFIX = "target:"
STAGES = ("export", "quantize", "compile", "bench")


@dataclasses.dataclass(frozen=True, slots=True)
class Fleet:
    """What the connected Ray offers: devices per target, and how benchmarks are placed."""

    embedded: bool
    devices: dict[str, int]  # target name -> nodes advertising target:<name>
    bench_cpus: int
    build_node: str | None = None  # node id builds are pinned to (--build-here)


def join_command(target: str) -> str:
    """How a device of ``target`` joins the cluster (shown where a target has no device)."""
    return (f"ray start --address=HEAD:6379 --resources='{{\"{RESOURCE_PREFIX}{target}\": 1}}'"
            " --num-cpus=0")


def connect(address: str | None, workers: int | None, targets: Sequence[str],
            build_here: bool = False) -> Fleet:
    """Start Ray in-process with ``workers`` CPUs (default: all), advertising the targets this
    host runs natively, or join the cluster at ``address`` ("auto", "HOST:PORT").

    Raises:
        FrugalError: Ray is not installed; SweepError: Ray could not start or connect.
    """
    require("ray", extra="cluster")
    import ray

    from frugalml.runtime.host import read_host
    from frugalml.targets import get_target
    from frugalml.targets.detect import Probes, Runs, status

    host, probes = read_host(), Probes.read()
    try:
        if address is None:
            cpus = workers or os.cpu_count() or 1
            native = [t for t in dict.fromkeys(targets)
                      if status(get_target(t), host, probes).runs is Runs.NATIVE]
            ray.init(num_cpus=cpus, resources={RESOURCE_PREFIX + t: 1 for t in native},
                     include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise SweepError(f"Ray could not {'start' if address is None else 'connect to ' + address}"
                         f": {one_line(e)}.") from e
    devices = {name[len(RESOURCE_PREFIX):]: int(count)
               for name, count in ray.cluster_resources().items()
               if name.startswith(RESOURCE_PREFIX)}
    node = ray.get_runtime_context().get_node_id() if build_here else None
    return Fleet(embedded=address is None, devices=devices,
                 bench_cpus=(workers or os.cpu_count() or 1) if address is None else 0,
                 build_node=node)


def disconnect() -> None:
    """Stop the embedded Ray, or leave the cluster."""
    import ray

    ray.shutdown()


def _bench_on_device(archive: bytes, compiled: dict[str, Any], threads: int,
                     bench: dict[str, int]) -> dict[str, Any]:
    """The bench stage, plus where and when it ran, even when it failed there (a device
    that refuses a bundle, e.g. lacking a CPU feature, is worth naming)."""
    import platform
    import time

    import ray

    where = {"node_id": ray.get_runtime_context().get_node_id(), "hostname": platform.node(),
             "started": time.time()}
    try:
        result = stages.bench_stage(archive, compiled, threads, bench)
    except Exception as e:  # recorded as the cell's typed error by _record
        result = {"failed": {"type": type(e).__name__, "message": one_line(e, 800)}}
    return {**result, **where, "ended": time.time()}


@dataclasses.dataclass
class _Submitted:
    """Object refs by stage key, shared by the cells that agree on a stage's inputs."""

    refs: dict[str, Any] = dataclasses.field(default_factory=dict)
    kind: dict[Any, str] = dataclasses.field(default_factory=dict)

    def once(self, kind: str, key: str, submit: Callable[[], Any]) -> Any:
        if key not in self.refs:
            self.refs[key] = submit()
            self.kind[self.refs[key]] = kind
        return self.refs[key]


def run_cells(plans: Sequence[CellPlan], spec: SweepSpec, store: CellStore, fleet: Fleet,
              on_event: Callable[[str, str], None]) -> dict[str, dict[str, Any]]:
    """Submit every plan's stages, wait for them, write each cell's record as it ends.

    ``on_event(kind, detail)`` reports progress: a stage kind when one of its tasks ends, or
    "cell" with the cell's one-line outcome. Returns the new records by cell key.
    """
    import ray

    build: dict[str, Any] = {"num_cpus": 1}
    if fleet.build_node:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        build["scheduling_strategy"] = NodeAffinitySchedulingStrategy(fleet.build_node, soft=False)
    export = ray.remote(stages.export_stage).options(**build)
    quantize = ray.remote(stages.quantize_stage).options(**build)
    compile_ = ray.remote(stages.compile_stage).options(**build)
    pack = ray.remote(stages.pack_bundle).options(**build)
    bench = ray.remote(_bench_on_device)
    art, done = str(store.artifacts), _Submitted()
    chains: dict[Any, list[tuple[CellPlan, list[tuple[str, Any]]]]] = {}
    for p in plans:
        c, data = p.cell, str(p.cell.model.data)
        e = done.once("export", p.export_key, lambda c=c, p=p, data=data: export.remote(
            art, p.export_key, str(c.model.model), data))
        q = done.once("quantize", p.quantize_key, lambda c=c, p=p, e=e, data=data: (
            quantize.remote(art, p.quantize_key, e, data, c.recipe.to_dict(), c.target,
                            spec.eval_items)))
        b = done.once("compile", p.compile_key, lambda c=c, p=p, q=q, data=data: (
            compile_.remote(art, p.compile_key, q, data, c.target, c.backend,
                            f"{c.model.name}-{c.recipe.label}", spec.samples)))
        chain = [("export", e), ("quantize", q), ("compile", b)]
        if c.target in fleet.devices:
            archive = done.once("pack", "pack-" + p.compile_key, lambda b=b: pack.remote(b))
            m = bench.options(num_cpus=fleet.bench_cpus,
                              resources={RESOURCE_PREFIX + c.target: 1}).remote(
                archive, b, c.threads, dict(spec.bench))
            done.kind[m] = "bench"
            chain.append(("bench", m))
        chains.setdefault(chain[-1][1], []).append((p, chain))  # unmeasured cells share one
    pending, records = list(done.kind), {}
    while pending:
        ready, pending = ray.wait(pending, num_returns=1, fetch_local=False)
        for ref in ready:
            if done.kind[ref] != "pack":
                on_event(done.kind[ref], "")
            for plan, chain in chains.get(ref, ()):
                records[plan.key] = _record(plan, chain)
                store.write(plan.key, records[plan.key])
                on_event("cell", _outcome_line(records[plan.key]))
    return records


def _record(plan: CellPlan, chain: list[tuple[str, Any]]) -> dict[str, Any]:
    """The cell's record from its finished chain: results per stage, or the first failure."""
    import ray

    c = plan.cell
    record: dict[str, Any] = {"key": plan.key, "label": c.label, "model": c.model.name,
                              "recipe": c.recipe.label, "backend": c.backend,
                              "target": c.target, "threads": c.threads}
    for stage, ref in chain:
        try:
            record[stage] = ray.get(ref)
        except Exception as e:  # Ray wraps the task's own (typed) error; record it, go on
            cause = getattr(e, "cause", None) or e
            record.update(status="failed", error={
                "stage": stage, "type": type(cause).__name__, "message": one_line(cause, 800)})
            return record
        if "failed" in record[stage]:
            record.update(status="failed", error={"stage": stage, **record[stage]["failed"]})
            return record
    if "bench" in record:
        record["status"] = MEASURED
    else:
        record.update(status="built", note=f"not measured: no node advertises "
                      f"{RESOURCE_PREFIX}{c.target}; a device joins with `"
                      f"{join_command(c.target)}`")
    return record


def _outcome_line(record: dict[str, Any]) -> str:
    if record["status"] == MEASURED:
        p50 = record["bench"]["profile"]["latency_ms"]["p50"]
        return f"{record['label']}: p50 {p50:.2f} ms on {record['bench']['hostname']}"
    if record["status"] == "failed":
        err = record["error"]
        return f"{record['label']}: FAILED in {err['stage']}: {err['type']}: {err['message']}"
    return f"{record['label']}: built; {record['note']}"
