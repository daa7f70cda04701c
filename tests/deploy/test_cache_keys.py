"""Deploy's cache keys name the libraries that build an entry: after an upgrade of ONNX Runtime,
NNCF or torch, a cached model and its scores are built again, not reused silently."""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

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
    export, quantize = _stage_keys(cell, "fingerprint", 200)
    assert export == stages.export_key(stages.file_sha256(tmp_path / "m.onnx"), "fingerprint")
    for upgraded in ("torch", "onnxruntime"):
        with monkeypatch.context() as patch:
            _upgrade(patch, upgraded)
            again = _stage_keys(cell, "fingerprint", 200)
        assert again[0] != export and again[1] != quantize, upgraded  # both miss
    monkeypatch.undo()
    assert _stage_keys(cell, "fingerprint", 200) == (export, quantize)  # stable otherwise


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
    keys = {c.candidate.label: _stage_keys(c, "fingerprint", 200)
            for c in load_spec(tmp_path / "spec.json").cells() if c.backend == "onnxruntime"}
    assert len({export for export, _ in keys.values()}) == 1  # one export serves them all
    quantize = {label: key for label, (_, key) in keys.items()}
    assert len(set(quantize.values())) == 4  # the recipe entry int8 is int8-static's twin
    assert quantize["int8"] == quantize["int8-static"]
