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
    assert data["best"] in ("x86-avx2", "x86-avx512", "x86-avx512-bf16", "x86-amx")
    assert data["host"]["flags"]
    # bf16 candidates are offered where the target's CPUs compute bf16, and absent with the
    # reason elsewhere; the host line says what this CPU computes natively.
    assert "bf16" in data["capabilities"]["precisions"] or data["best"] in ("x86-avx2",
                                                                            "x86-avx512")
    assert "bf16-openvino" not in data["targets"]["x86-amx"]["not_offered"]
    assert "native bf16" in data["targets"]["x86-avx2"]["not_offered"]["bf16-openvino"]
    text = _frugal("targets").stdout
    assert "computes natively: fp32" in text and "no bf16-openvino: needs native bf16" in text


def test_verify_and_run_real_bundle(int8_bundle: Path, tmp_path: Path) -> None:
    done = _frugal("verify", str(int8_bundle), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["min_cosine"] > 0.999
    import numpy as np

    with np.load(int8_bundle / "samples.npz") as d:
        np.savez(tmp_path / "in.npz", input_ids=d["input.input_ids"])
    done = _frugal("run", str(int8_bundle), "--input", str(tmp_path / "in.npz"))
    assert done.returncode == 2 and "missing: ['attention_mask', 'token_type_ids']" in done.stderr
    with np.load(int8_bundle / "samples.npz") as d:
        np.savez(tmp_path / "all.npz", **{k.removeprefix("input."): d[k] for k in d.files
                                          if k.startswith("input.")})
    done = _frugal("run", str(int8_bundle), "--input", str(tmp_path / "all.npz"), "--output",
                   str(tmp_path / "out.npz"), "--backend", "openvino")
    assert done.returncode == 0, done.stderr
    with np.load(tmp_path / "out.npz") as out, np.load(int8_bundle / "samples.npz") as d:
        emb, ref = out["sentence_embedding"], d["output.sentence_embedding"]
        cosine = (emb * ref).sum(1) / np.linalg.norm(emb, axis=1) / np.linalg.norm(ref, axis=1)
        # OpenVINO executes the ORT-built U8S8 QDQ graph with its own int8 kernels: measured
        # cosine 0.988-0.993 to ORT's outputs, close but not the same numerics.
        assert cosine.min() > 0.98


def test_bench_prints_latency_cold_start_and_kernels(mnist_bundle: Path) -> None:
    done = _frugal("bench", str(mnist_bundle), "--runs", "20", "--streams", "2", "--json")
    assert done.returncode == 0, done.stderr
    prof = json.loads(done.stdout)
    assert prof["settings"]["runs"] == 20 and set(prof["streams_per_s"]) == {"1", "2"}
    assert {"verify", "compile", "first_inference"} <= set(prof["cold_start_ms"])
    assert prof["ops"]["kernels"]["float"] == 4
