"""A local multi-node Ray cluster: one node advertises target:arm64, one target:x86-avx2;
every benchmark runs on the node of its target, one at a time per device."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from frugalml.sweep.run import run_sweep
from tests.sweep.conftest import write_spec


@pytest.fixture
def fleet() -> Iterator[tuple[str, dict[str, str]]]:
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 2, "include_dashboard": False, "object_store_memory": 200 << 20})
    try:
        nodes = {t: cluster.add_node(num_cpus=0, resources={f"target:{t}": 1},
                                     object_store_memory=100 << 20).node_id
                 for t in ("arm64", "x86-avx2")}
        cluster.wait_for_nodes()
        yield cluster.address, nodes
    finally:
        cluster.shutdown()


def test_benchmarks_run_on_the_node_of_their_target(sweep_models: Path, tmp_path: Path,
                                                    fleet: tuple[str, dict[str, str]]) -> None:
    address, nodes = fleet
    spec = write_spec(sweep_models / "fleet.json", json.dumps({
        "name": "fleet", "models": [{"name": "mnist", "model": "mnist.onnx",
                                     "data": "cal-mnist"}],
        "recipes": ["fp32"], "targets": ["x86-avx2", "arm64"],
        "settings": {"threads": [1, 2]}, "eval_items": 16, "bench": {"runs": 10}}))
    run_sweep(spec, tmp_path / "out", address=address, quiet=True)
    records = json.loads((tmp_path / "out" / "sweep.json").read_text())["records"]
    assert len(records) == 4
    for r in records:
        assert r["bench"]["node_id"] == nodes[r["target"]], r["label"]
    x86 = [r for r in records if r["target"] == "x86-avx2"]
    assert [r["status"] for r in x86] == ["measured", "measured"]
    assert [r["bench"]["profile"]["settings"]["threads"] for r in x86] == [1, 2]
    first, second = sorted((r["bench"]["started"], r["bench"]["ended"]) for r in x86)
    assert first[1] <= second[0], "two benchmarks overlapped on one device"
    # The "arm64 device" here is this x86 machine: the runtime on the device refuses the
    # bundle, naming what the host lacks, and the cell records it.
    for r in (r for r in records if r["target"] == "arm64"):
        assert r["status"] == "failed" and r["error"]["stage"] == "bench"
        assert r["error"]["type"] == "TargetError" and "aarch64" in r["error"]["message"]
