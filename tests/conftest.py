"""Shared fixtures: one real deploy of the demo model on a small evaluation slice, and a small
real bundle (the MNIST CNN, FP32) for runtime tests that need thousands of calls."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from frugalml.pipeline import DeployOptions, DeployResult
from tests.realdata import build_mnist_bundle

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
    return build_mnist_bundle(tmp_path_factory.mktemp("mnist"))
