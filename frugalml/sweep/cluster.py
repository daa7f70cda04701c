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
import time
from collections.abc import Callable, Sequence
from typing import Any

from frugalml.errors import SweepError, one_line, require
from frugalml.runtime.host import read_host
from frugalml.sweep import stages
from frugalml.sweep.plan import MEASURED, NOT_APPLICABLE, CellPlan, CellStore
from frugalml.sweep.spec import SweepSpec
from frugalml.targets import get_target
from frugalml.targets.detect import status
from frugalml.targets.support import Probes, Runs

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
                     bench: dict[str, int], baseline_refs: list[Any] | None = None
                     ) -> dict[str, Any]:
    """The bench stage, plus where and when it ran, even when it failed there (a device
    that refuses a bundle, e.g. lacking a CPU feature, is worth naming).

    ``baseline_refs`` (nested, so Ray does not resolve them for us): the FP32 sibling's packed
    bundle and compile record; when they failed, the cell is still profiled, its speed "not
    measured"."""
    import platform

    import ray

    where = {"node_id": ray.get_runtime_context().get_node_id(), "hostname": platform.node(),
             "started": time.time()}
    baseline, missing = None, None
    if baseline_refs:
        try:
            baseline = tuple(ray.get(baseline_refs))
        except Exception as e:  # the FP32 sibling failed to build: its own record says why
            missing = {"verdict": "not measured", "why": f"FP32 sibling not built: "
                       f"{one_line(getattr(e, 'cause', None) or e, 300)}"}
    try:
        result = stages.bench_stage(archive, compiled, threads, bench, baseline)
    except Exception as e:  # recorded as the cell's typed error by _record
        result = {"failed": {"type": type(e).__name__, "message": one_line(e, 800)}}
    if missing and "failed" not in result:
        result["speed"] = missing
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
              on_event: Callable[[str, str], None], baselines: Sequence[CellPlan] = ()
              ) -> dict[str, dict[str, Any]]:
    """Submit every plan's stages, wait for them, write each cell's record as it ends.

    ``on_event(kind, detail)`` reports progress: a stage kind when one of its tasks ends, or
    "cell" with the cell's one-line outcome. ``baselines``: FP32 cells already measured whose
    bundles the quantized ``plans`` are timed against (rebuilt from the stage caches, not
    benchmarked or recorded again). Returns the new records by cell key.
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
    art, done = str(store.artifacts), _Submitted()
    chains: dict[Any, list[tuple[CellPlan, list[tuple[str, Any]]]]] = {}
    built: dict[str, list[tuple[str, Any]]] = {}
    for p in [*plans, *baselines]:
        c, data = p.cell, str(p.cell.model.data)
        kinds = ("export", "quantize", "compile") if p in plans else ("baseline",) * 3
        e = done.once(kinds[0], p.export_key, lambda c=c, p=p, data=data: export.remote(
            art, p.export_key, str(c.model.model), data))
        q = done.once(kinds[1], p.quantize_key, lambda c=c, p=p, e=e, data=data: (
            quantize.remote(art, p.quantize_key, e, data, c.candidate.to_dict(), c.target,
                            spec.eval_items)))
        done.once(kinds[2], p.compile_key, lambda c=c, p=p, q=q, data=data: (
            compile_.remote(art, p.compile_key, q, data, c.target, c.backend,
                            f"{c.model.name}-{c.candidate.label}", spec.samples)))
        built[p.key] = [("export", e), ("quantize", q), ("compile", done.refs[p.compile_key])]
    fp32 = {_pair(p): p for p in [*plans, *baselines] if p.cell.candidate.is_fp32}
    bench = ray.remote(_bench_on_device)
    for p in plans:
        chain = built[p.key]
        if p.cell.target in fleet.devices:
            chain.append(("bench", _submit_bench(done, pack, bench, p, fp32, spec, fleet)))
        chains.setdefault(chain[-1][1], []).append((p, chain))  # unmeasured cells share one
    pending, records = list(done.kind), {}
    while pending:
        ready, pending = ray.wait(pending, num_returns=1, fetch_local=False)
        for ref in ready:
            if done.kind[ref] not in ("pack", "baseline"):
                on_event(done.kind[ref], "")
            for plan, chain in chains.get(ref, ()):
                records[plan.key] = _record(plan, chain)
                store.write(plan.key, records[plan.key])
                on_event("cell", _outcome_line(records[plan.key]))
    return records


def _submit_bench(done: _Submitted, pack: Any, bench: Any, plan: CellPlan,
                  fp32: dict[tuple[str, str, str, int], CellPlan], spec: SweepSpec,
                  fleet: Fleet) -> Any:
    """The bench task of one cell on a device of its target; a quantized cell takes its FP32
    sibling's bundle along, to be timed against it there."""
    c = plan.cell
    sibling = fp32.get(_pair(plan)) if not c.candidate.is_fp32 else None
    baseline = ([_pack(done, pack, sibling), done.refs[sibling.compile_key]]
                if sibling is not None else None)
    ref = bench.options(num_cpus=fleet.bench_cpus,
                        resources={RESOURCE_PREFIX + c.target: 1}).remote(
        _pack(done, pack, plan), done.refs[plan.compile_key], c.threads, dict(spec.bench),
        baseline)
    done.kind[ref] = "bench"
    return ref


def _pair(plan: CellPlan) -> tuple[str, str, str, int]:
    """What a quantized cell and its FP32 sibling share: model, backend, target, threads."""
    c = plan.cell
    return c.model.name, c.backend, c.target, c.threads


def _pack(done: _Submitted, pack: Any, plan: CellPlan) -> Any:
    """The packed bundle of ``plan``'s compile stage, submitted once."""
    compiled = done.refs[plan.compile_key]
    return done.once("pack", "pack-" + plan.compile_key, lambda: pack.remote(compiled))


def _record(plan: CellPlan, chain: list[tuple[str, Any]]) -> dict[str, Any]:
    """The cell's record from its finished chain: results per stage, or the first failure."""
    import ray

    c = plan.cell
    record: dict[str, Any] = {"key": plan.key, "label": c.label, "model": c.model.name,
                              "candidate": c.candidate.label, "backend": c.backend,
                              "target": c.target, "threads": c.threads}
    for stage, ref in chain:
        try:
            record[stage] = ray.get(ref)
        except Exception as e:  # Ray wraps the task's own (typed) error; record it, go on
            cause = getattr(e, "cause", None) or e
            if isinstance(cause, stages.DoesNotApply):
                record.update(status=NOT_APPLICABLE, note=one_line(cause, 800))
                return record
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
    if record["status"] == NOT_APPLICABLE:
        return f"{record['label']}: not applicable: {record['note']}"
    return f"{record['label']}: built; {record['note']}"
