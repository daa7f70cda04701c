"""Deploy's cache keys name the libraries that build an entry: after an upgrade of ONNX Runtime,
NNCF or torch, a cached model and its scores are built again, not reused silently."""

from __future__ import annotations

from importlib import metadata

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
