"""Shared fixtures: one real deploy of the demo model on a small evaluation slice, and a small
real bundle (the MNIST CNN, FP32) for runtime tests that need thousands of calls."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from frugalml._atomic import staged
from frugalml.export import GraphSpec, export
from frugalml.pipeline import DeployOptions, DeployResult
from frugalml.targets.bundle import assemble
from frugalml.targets.profiles import get_target
from tests.realdata import mnist_batch, mnist_net

SMALL = DeployOptions(eval_items=1000, profile_runs=30, profile_rounds=1)


@pytest.fixture(scope="session")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> DeployResult:
    """The whole path on all-MiniLM-L6-v2 (about 2 minutes on 2 cores)."""
    from frugalml.calibration import rotten_tomatoes_file
    from frugalml.demo import default_model_dir
    from frugalml.pipeline import deploy

    out = tmp_path_factory.mktemp("deploy")
    return deploy(default_model_dir(), rotten_tomatoes_file(), out,
                  dataclasses.replace(SMALL), quiet=True)


@pytest.fixture(scope="session")
def int8_bundle(deployed: DeployResult) -> Path:
    """The INT8 bundle written by the real deploy (shipped or not)."""
    return deployed.bundles["int8"]


@pytest.fixture(scope="session")
def mnist_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Exported, validated and bundled like a deploy does, with 16 real digits as samples."""
    root = tmp_path_factory.mktemp("mnist")
    digits, _ = mnist_batch(64)
    record = export(mnist_net(), root / "export", example={"image": digits[:2]},
                    spec=GraphSpec(("image",), ("logits",), {"image": {0: "batch"}}),
                    validation=[{"image": digits}])
    dest = root / "bundle"
    with staged(dest) as stage:
        assemble(stage, name="mnist-cnn-x86-avx2-fp32", model_file=record.path,
                 target=get_target("x86-avx2"), precision="fp32",
                 samples={"image": digits[:16]}, source={"model": "ccexam MNISTNet"},
                 recipe={"precision": "fp32"}, calibration=None, metrics={},
                 sample_tolerance={"min_cosine": 0.9999, "max_abs": 1e-3})
    return dest
