"""arm64 bundles checked under QEMU user-mode emulation, with ONNX Runtime and OpenVINO for
aarch64, against the unfused reference recorded at build time. Model: the real MNIST CNN,
static INT8 in the arm64 format (S8S8), on real digits.

Needs qemu-user-static and debootstrap (scripts/setup.sh installs them when run as root); the
tests skip without them, except in CI, which sets FRUGALML_REQUIRE_EMULATION=1."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from bench._data import mnist_batch, mnist_net
from frugalml.calibration import from_items, make_set
from frugalml.errors import BundleError, TargetError
from frugalml.runtime.host import read_host
from frugalml.targets import get_target
from frugalml.targets.arm64_root import apt_mirror, require_tools
from frugalml.targets.compile import compile_model
from frugalml.targets.emulation import verify_emulated


def _emulation_or_skip() -> None:
    try:
        require_tools()
    except TargetError as e:
        if os.environ.get("FRUGALML_REQUIRE_EMULATION") == "1":
            raise
        pytest.skip(str(e))
    if read_host().machine == "aarch64":
        pytest.skip("this host is aarch64: arm64 bundles verify natively here")


@pytest.fixture(scope="module")
def arm64_bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    _emulation_or_skip()
    from frugalml.export import GraphSpec, export
    from frugalml.quantize.api import quantize

    root = tmp_path_factory.mktemp("arm64")
    digits, labels = mnist_batch(300)
    record = export(mnist_net(), root / "fp32", example={"image": digits[:2]},
                    spec=GraphSpec(("image",), ("logits",), {"image": {0: "batch"}}),
                    validation=[{"image": digits[:16]}])
    data = make_set(from_items([{"image": d} for d in digits], labels=labels.tolist()),
                    calibration_size=100)
    quantize(record.path, data, root / "int8", recipe="int8", target="arm64", eval_items=200)
    result = compile_model(root / "int8", root / "bundles", target="arm64",
                           fp32=root / "fp32", samples={"image": digits[:8]}, name="mnist")
    return {"result": result, "root": root}


def test_arm64_bundles_verify_under_emulation_with_onnxruntime(arm64_bundles: dict) -> None:
    result = arm64_bundles["result"]
    assert set(result.verification) == {"int8", "fp32"}
    for check in result.verification.values():
        assert check["status"] == "verified", check
        assert "emulation (neoverse-n1)" in check["how"] and "onnxruntime" in check["how"]
        assert check["emulated_host"]["machine"] == "aarch64"
        assert "asimddp" in check["emulated_host"]["flags"]
    # ARM INT8 kernels are exact against the unfused reference (measured max abs error 0.0).
    assert result.verification["int8"]["max_abs_error"] <= 1e-4
    assert result.verification["fp32"]["max_abs_error"] <= 1e-4
    assert result.speed_gate is None and result.default == "int8"  # emulated time means nothing


def test_the_same_bundles_verify_under_emulation_with_openvino(
        arm64_bundles: dict, capsys: pytest.CaptureFixture) -> None:
    import json

    from frugalml.cli import main

    bundles = arm64_bundles["result"].bundles
    check = verify_emulated(Path(bundles["fp32"]), get_target("arm64"), backend="openvino")
    assert "openvino" in check["how"]
    assert check["min_cosine"] >= 0.99999 and check["max_abs_error"] <= 1e-3, check
    capsys.readouterr()
    assert main(["verify", bundles["int8"], "--backend", "openvino", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] and out["status"] == "verified" and "openvino" in out["how"]
    assert out["max_abs_error"] <= 1e-4  # INT8 on ARM: exact against the unfused reference


def test_an_fp16_bundle_runs_arm_fp16_kernels_under_emulation(arm64_bundles: dict) -> None:
    """The fp16-cpu candidate's artifact for arm64: ONNX Runtime for aarch64 on an emulated
    Neoverse N1 (asimdhp) computes in fp16, so it differs from the fp32-arithmetic reference
    recorded at build time (x86 ONNX Runtime has no fp16 kernels and casts) by fp16 rounding
    (measured 0.147 on logits up to 92, cosine 0.9999995), within the manifest's tolerance,
    which scales with the outputs' peak."""
    import json

    from frugalml.quantize.api import quantize

    root = arm64_bundles["root"]
    digits, labels = mnist_batch(300)
    data = make_set(from_items([{"image": d} for d in digits], labels=labels.tolist()),
                    calibration_size=100)
    record = quantize(root / "fp32", data, root / "fp16", recipe="fp16", target="arm64",
                      eval_items=200)
    assert record.accuracy["candidate"]["top1_agreement_with_fp32"] == 1.0
    result = compile_model(root / "fp16", root / "bundles-fp16", target="arm64",
                           samples={"image": digits[:8]}, name="mnist")
    check = result.verification["fp16"]
    assert check["status"] == "verified" and "asimdhp" in check["emulated_host"]["flags"]
    manifest = json.loads((Path(result.bundles["fp16"]) / "manifest.json").read_text())
    tolerance = manifest["sample_tolerance"]
    peak = max(float(np.abs(v).max()) for k, v in np.load(
        Path(result.bundles["fp16"]) / "samples.npz").items() if k.startswith("output."))
    assert tolerance["max_abs"] == pytest.approx(max(0.05, 0.005 * peak))
    assert 1e-3 < check["max_abs_error"] <= tolerance["max_abs"]  # fp16 arithmetic ran
    assert check["min_cosine"] >= 0.9999


def test_an_arm64_bundle_is_refused_on_an_emulated_cpu_without_dot_product(
        arm64_bundles: dict) -> None:
    bundle = Path(arm64_bundles["result"].bundles["int8"])
    with pytest.raises(TargetError, match="cortex-a72.*needs CPU features asimddp"):
        verify_emulated(bundle, get_target("arm64-a72"))


def test_an_altered_bundle_fails_under_emulation(arm64_bundles: dict) -> None:
    altered = shutil.copytree(arm64_bundles["result"].bundles["int8"],
                              arm64_bundles["root"] / "altered")
    samples = dict(np.load(altered / "samples.npz"))
    samples = {k: v + 1 if k.startswith("output.") else v for k, v in samples.items()}
    np.savez(altered / "samples.npz", **samples)
    with pytest.raises(BundleError, match="samples.npz: sha256 differs"):
        verify_emulated(altered, get_target("arm64"))


def test_missing_emulation_tools_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda tool: None if "qemu" in tool else "/bin/x")
    with pytest.raises(TargetError, match="needs qemu-aarch64-static.*apt-get install "
                                          "qemu-user-static"):
        require_tools()


def test_apt_mirror_reads_both_source_formats(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm\n\nTypes: deb\n"
        "URIs: http://mirror.example/debian-security\n")
    assert apt_mirror(tmp_path) == "http://mirror.example/debian"
    (tmp_path / "sources.list.d" / "debian.sources").unlink()
    (tmp_path / "sources.list").write_text("deb [arch=amd64] http://old.example/debian "
                                           "bookworm main\n")
    assert apt_mirror(tmp_path) == "http://old.example/debian"
    (tmp_path / "sources.list").unlink()
    assert apt_mirror(tmp_path) == "http://deb.debian.org/debian"


def test_an_fp16_tolerance_scales_with_the_outputs_peak() -> None:
    from frugalml.targets.bundle import scaled_tolerance

    fixed = {"min_cosine": 0.9999, "max_abs": 0.05}
    logits = [np.array([[92.0, -3.0]], np.float32), np.array([1, 2], np.int64)]
    assert scaled_tolerance(fixed, logits) == fixed
    scaled = scaled_tolerance({**fixed, "max_abs_of_peak": 0.005}, logits)
    assert scaled == {"min_cosine": 0.9999, "max_abs": pytest.approx(0.46)}
    small = scaled_tolerance({**fixed, "max_abs_of_peak": 0.005}, [np.ones(3, np.float32)])
    assert small["max_abs"] == 0.05  # never tighter than the fixed bound
