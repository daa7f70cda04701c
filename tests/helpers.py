"""Test helpers: numeric assertions that name the stage and output, tiny models, Chromium,
and counters of the probes a run makes of its model files."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from frugalml.runtime.numerics import max_abs_error, row_cosine


def assert_outputs_close(stage: str, ref: Mapping[str, np.ndarray],
                         got: Mapping[str, np.ndarray], *, atol: float,
                         min_cosine: float) -> None:
    """Check names, shapes, dtypes, max abs error and per-item cosine of every output."""
    assert set(ref) == set(got), f"{stage}: outputs {sorted(got)} != expected {sorted(ref)}"
    for name, r in ref.items():
        g = got[name]
        assert g.shape == r.shape, f"{stage}/{name}: shape {g.shape} != {r.shape}"
        assert g.dtype == r.dtype, f"{stage}/{name}: dtype {g.dtype} != {r.dtype}"
        err, cos = max_abs_error(r, g), float(row_cosine(r, g).min())
        assert err <= atol, f"{stage}/{name}: max abs error {err:.3g} > {atol}"
        assert cos >= min_cosine, f"{stage}/{name}: min cosine {cos:.6f} < {min_cosine}"


def tiny_onnx(path: Path, *, external: bool = False) -> Any:
    """Write a one-MatMul ONNX model (x: float32[batch, 3] -> y = x @ arange(12).reshape(3, 4)).

    With ``external``, the weight goes to ``tiny.onnx.data`` beside the model.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(3, 4), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, None])], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(model, str(path), save_as_external_data=external,
                    location="tiny.onnx.data", size_threshold=0)
    return model


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--disable-default-apps", "--disable-extensions"]


def chromium() -> str:
    """Chromium, installed from Debian when missing (CI starts without it)."""
    found = shutil.which("chromium")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.fail("chromium is missing and cannot be installed here (needs root and apt-get)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, capture_output=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True, env=env,
                   capture_output=True)
    return shutil.which("chromium") or pytest.fail("apt-get installed no chromium binary")


def open_in_chromium(page: Path, shot: Path, height: int = 2400) -> tuple[list[str], str]:
    """Open a self-contained HTML page in headless Chromium: (console lines, rendered DOM),
    after checking it fetches nothing, logs no error, and screenshots to ``shot``."""
    html = page.read_text()
    for fetch in ('src="http', 'href="http', "url(http", "@import"):
        assert fetch not in html, f"the page would fetch something: {fetch}"
    browser, url = chromium(), page.resolve().as_uri()
    done = subprocess.run([browser, *CHROMIUM_FLAGS, "--enable-logging=stderr", "--v=0",
                           f"--screenshot={shot}", f"--window-size=1280,{height}", url],
                          capture_output=True, text=True, timeout=120)
    console = [ln for ln in done.stderr.splitlines() if "CONSOLE" in ln]
    assert console, done.stderr[-2000:]
    assert not [ln for ln in console if "Uncaught" in ln or "ERROR:CONSOLE" in ln], console
    assert shot.stat().st_size > 50_000
    dom = subprocess.run([browser, *CHROMIUM_FLAGS, "--dump-dom", url], capture_output=True,
                         text=True, timeout=120).stdout
    return console, dom


@dataclasses.dataclass
class Probes:
    """Full-file hashes and ONNX Runtime sessions, counted by resolved path."""

    hashes: Counter = dataclasses.field(default_factory=Counter)
    sessions: Counter = dataclasses.field(default_factory=Counter)


def count_probes(monkeypatch: pytest.MonkeyPatch) -> Probes:
    """Count, from now on in this process, every file read through sha256 and every ONNX
    Runtime session opened on a path."""
    import onnxruntime as ort

    from frugalml.core import records

    probes = Probes()
    read = records._read_sha256

    def counting_read(path: Path, chunk: int) -> str:
        probes.hashes[str(Path(path).resolve())] += 1
        return read(path, chunk)

    class CountingSession(ort.InferenceSession):
        def __init__(self, model: Any, *args: Any, **kwargs: Any) -> None:
            if isinstance(model, (str, Path)):
                probes.sessions[str(Path(model).resolve())] += 1
            super().__init__(model, *args, **kwargs)

    monkeypatch.setattr(records, "_read_sha256", counting_read)
    monkeypatch.setattr(records, "_HASHED", {})
    monkeypatch.setattr(ort, "InferenceSession", CountingSession)
    return probes
