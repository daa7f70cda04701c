"""Deploy's cache keys name the libraries that build an entry: after an upgrade of ONNX Runtime,
NNCF or torch, a cached model and its scores are built again, not reused silently."""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

from frugalml.deploy import stages


def _key() -> str:
    return stages.quantize_key("exported", "recipe", "onnxruntime", "onnx", "u8s8", "native",
                               "data", 200, None)


def test_the_toolchain_names_installed_versions_and_absent_ones() -> None:
    import onnxruntime

    names = stages.toolchain("onnxruntime", "no-such-distribution-here")
    assert names[0].startswith("frugalml==")
    assert names[1:] == (f"onnxruntime=={onnxruntime.__version__}",
                         "no-such-distribution-here==absent")


def _upgrade(monkeypatch: pytest.MonkeyPatch, upgraded: str) -> None:
    real = metadata.version
    monkeypatch.setattr(metadata, "version",
                        lambda name: "99.0" if name == upgraded else real(name))


@pytest.mark.parametrize("upgraded", ["onnxruntime", "nncf", "openvino"])
def test_another_quantizer_or_runtime_version_is_another_quantize_entry(
        monkeypatch: pytest.MonkeyPatch, upgraded: str) -> None:
    before = _key()
    _upgrade(monkeypatch, upgraded)
    assert _key() != before


@pytest.mark.parametrize(("upgraded", "changes"), [("torch", True), ("transformers", True),
                                                   ("nncf", False)])
def test_the_export_entry_follows_the_exporter_libraries(
        monkeypatch: pytest.MonkeyPatch, upgraded: str, changes: bool) -> None:
    before = stages.export_key("source", "data", "text-generation-with-past")
    _upgrade(monkeypatch, upgraded)
    assert (stages.export_key("source", "data", "text-generation-with-past") != before) is changes


def test_the_sweep_keys_its_stages_with_deploys_functions(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sweep's export and quantize entries are deploy's: the same key functions, so an
    upgraded library makes both faces miss (the sweep hashed only frugalml's version)."""
    from frugalml.sweep.plan import _stage_keys
    from frugalml.sweep.spec import load_spec

    (tmp_path / "m.onnx").write_bytes(b"an onnx file's bytes")
    (tmp_path / "cal").mkdir()
    (tmp_path / "spec.json").write_text(json.dumps({
        "models": [{"model": "m.onnx", "data": "cal"}], "recipes": ["int8"],
        "targets": ["x86-avx2"]}))
    (cell,) = load_spec(tmp_path / "spec.json").cells()
    export, quantize = _stage_keys(cell, "fingerprint", "validation", 200)
    assert export == stages.export_key(stages.file_sha256(tmp_path / "m.onnx"), "validation")
    for upgraded in ("torch", "onnxruntime"):
        with monkeypatch.context() as patch:
            _upgrade(patch, upgraded)
            again = _stage_keys(cell, "fingerprint", "validation", 200)
        assert again[0] != export and again[1] != quantize, upgraded  # both miss
    monkeypatch.undo()
    assert _stage_keys(cell, "fingerprint", "validation", 200) == (export, quantize)  # stable


def test_sweep_cells_of_deploy_candidates_key_what_deploy_builds(tmp_path: Path) -> None:
    """A candidate by name is keyed by its own recipe, backend, format and graph: the fused
    graph's int8-dynamic is another entry than the export's, as in deploy."""
    from frugalml.sweep.plan import _stage_keys
    from frugalml.sweep.spec import load_spec

    (tmp_path / "m.onnx").write_bytes(b"an onnx file's bytes")
    (tmp_path / "cal").mkdir()
    (tmp_path / "spec.json").write_text(json.dumps({
        "models": [{"model": "m.onnx", "data": "cal"}], "targets": ["x86-avx2"],
        "candidates": ["int8-dynamic", "int8-dynamic-fused", "int8-nncf", "int8-static"],
        "recipes": ["int8"]}))
    keys = {c.candidate.label: _stage_keys(c, "fingerprint", "validation", 200)
            for c in load_spec(tmp_path / "spec.json").cells() if c.backend == "onnxruntime"}
    assert len({export for export, _ in keys.values()}) == 1  # one export serves them all
    quantize = {label: key for label, (_, key) in keys.items()}
    assert len(set(quantize.values())) == 4  # the recipe entry int8 is int8-static's twin
    assert quantize["int8"] == quantize["int8-static"]


def test_another_calibration_size_reuses_the_export(tmp_path: Path) -> None:
    """The export is keyed by the inputs it is checked on, and those (the first evaluation
    items) do not move with --num: a second run with more calibration items exports nothing,
    and quantizes again (its calibration changed)."""
    from frugalml.deploy import DeployOptions, deploy
    from tests.deploy.test_families import _scorer

    model = _scorer(tmp_path / "scorer.onnx")
    np.save(tmp_path / "x.npy", np.random.default_rng(1).normal(size=(96, 16)).astype(
        np.float32))
    cache = tmp_path / "out" / "cache"
    built: list[dict[str, int]] = []
    for num in (32, 48):
        deploy(model, tmp_path / "x.npy", tmp_path / "out", DeployOptions(
            candidates="int8-static", calibration_items=num, profile_runs=5), quiet=True)
        built.append({p.name: p.stat().st_mtime_ns for p in cache.iterdir()})
    exports = [{n: t for n, t in b.items() if n.startswith("export-")} for b in built]
    assert len(exports[0]) == 1 and exports[0] == exports[1]  # the same entry, untouched
    quantized = [{n for n in b if n.startswith("quantize-")} for b in built]
    assert len(quantized[1] - quantized[0]) == 1  # int8-static calibrated on 48 items


def test_the_export_key_follows_its_validation_inputs() -> None:
    feeds = {"x": np.arange(8, dtype=np.float32).reshape(2, 4)}
    same = {"x": np.arange(8, dtype=np.float32).reshape(2, 4)}
    key = stages.export_key("source", stages.feeds_digest([feeds]))
    assert key == stages.export_key("source", stages.feeds_digest([same]))
    for other in ({"x": feeds["x"] + 1}, {"x": feeds["x"].reshape(4, 2)},
                  {"x": feeds["x"].astype(np.float64)}, {"y": feeds["x"]}):
        assert stages.export_key("source", stages.feeds_digest([other])) != key, other
