"""CLI: typed errors become one line and exit code 2; --json is parseable."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def _frugal(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "frugalml.cli", *args],
                          capture_output=True, text=True, check=False)


def test_missing_bundle_prints_error_without_traceback(tmp_path: Path) -> None:
    done = _frugal("verify", str(tmp_path / "nope"))
    assert done.returncode == 2
    assert done.stderr.startswith("error: No bundle at")
    assert "Traceback" not in done.stderr


def test_targets_json_names_this_host() -> None:
    done = _frugal("targets", "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["best"] in ("x86-avx2", "x86-avx512")
    assert data["host"]["flags"]


def test_verify_and_run_real_bundle(int8_bundle: Path, tmp_path: Path) -> None:
    done = _frugal("verify", str(int8_bundle), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["min_cosine"] > 0.999
    import numpy as np

    with np.load(int8_bundle / "samples.npz") as d:
        np.savez(tmp_path / "in.npz", input_ids=d["input.input_ids"])
    done = _frugal("run", str(int8_bundle), str(tmp_path / "in.npz"))
    assert done.returncode == 2 and "missing: ['attention_mask', 'token_type_ids']" in done.stderr
