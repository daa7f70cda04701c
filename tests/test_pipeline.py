"""Caching: a second deploy reuses export, quantization and evaluation instead of redoing them."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

from frugalml.pipeline import DeployResult
from tests.conftest import SMALL


def test_second_run_reuses_cached_stages(deployed: DeployResult, tmp_path: Path) -> None:
    from frugalml.calibration import rotten_tomatoes_file
    from frugalml.demo import default_model_dir
    from frugalml.pipeline import deploy

    # A copy of the first run's cache: proves cache dirs are relocatable and keeps the first
    # run's report untouched for the other tests.
    out = tmp_path / "again"
    cache = out / "cache"
    shutil.copytree(deployed.report_json.parent / "cache", cache)
    before = {p.name: p.stat().st_mtime_ns for p in cache.iterdir()}
    again = deploy(default_model_dir(), rotten_tomatoes_file(), out,
                   dataclasses.replace(SMALL, profile_runs=10), quiet=True)
    after = {p.name: p.stat().st_mtime_ns for p in cache.iterdir()}
    assert before == after  # nothing rebuilt, nothing added
    assert again.report["int8"]["mean_cosine"] == deployed.report["int8"]["mean_cosine"]
    assert again.bundles["int8"].is_dir()
