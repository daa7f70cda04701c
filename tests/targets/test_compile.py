"""`compile`: per-target artifacts from one model, verified by what runs them here, speed-gated
where the target is native. Model: the real MNIST CNN, FP32 and static INT8, on real digits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench._data import mnist_batch, mnist_net
from frugalml import runtime
from frugalml.errors import TargetError
from frugalml.runtime.host import read_host
from frugalml.runtime.speed import Plan
from frugalml.targets.compile import compile_model
from frugalml.targets.support import Probes

QUICK = Plan(min_rounds=4, time_cap_s=5.0, round_s=0.05)

NO_GPU = Probes(qemu_aarch64=False, intel_gpu=False, opencl=False)


@pytest.fixture(scope="module")
def mnist(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    from frugalml.calibration import from_items, make_set
    from frugalml.export import GraphSpec, export
    from frugalml.quantize.api import quantize

    root = tmp_path_factory.mktemp("compile")
    digits, labels = mnist_batch(400)
    record = export(mnist_net(), root / "fp32", example={"image": digits[:2]},
                    spec=GraphSpec(("image",), ("logits",), {"image": {0: "batch"}}),
                    validation=[{"image": digits[:16]}])
    data = make_set(from_items([{"image": d} for d in digits], labels=labels.tolist()),
                    calibration_size=100)
    quantize(record.path, data, root / "int8", recipe="int8", target="x86-avx2",
             eval_items=200)
    return {"fp32": root / "fp32", "int8": root / "int8", "samples": {"image": digits[:8]}}


def test_x86_avx2_bundles_verify_natively_and_the_gate_picks_the_default(
        mnist: dict, tmp_path: Path) -> None:
    result = compile_model(mnist["int8"], tmp_path, target="x86-avx2", fp32=mnist["fp32"],
                           samples=mnist["samples"], name="mnist", gate_plan=QUICK)
    assert set(result.bundles) == {"int8", "fp32"}
    assert all(v["status"] == "verified" and v["how"] == "natively"
               for v in result.verification.values())
    ran = {p: v["kernels_ran"] for p, v in result.verification.items()}  # profiled, not counted
    assert ran["fp32"]["quantized"] == 0 and ran["fp32"]["float"] >= 3
    # x86-avx2 keeps an image's first layer (here a 1-channel conv) in float, by design
    # (quantize/onnxruntime.py, _first_layers); every other kernel is an integer one.
    assert ran["int8"]["quantized"] >= 3 and ran["int8"]["float"] == 1, ran
    assert "conv" in ran["int8"]["float_nodes"][0], ran
    gate = result.speed_gate
    assert gate is not None and gate["rounds"] >= QUICK.min_rounds
    assert gate["verdict"] in ("faster", "slower", "inconclusive")
    assert gate["ci95"][0] <= gate["ratio_p50"] <= gate["ci95"][1]
    assert gate["settings"]["spinning"] is False and "family" in gate["why"]
    assert result.default == ("int8" if gate["verdict"] == "faster" else "fp32")
    manifest = json.loads((Path(result.bundles["int8"]) / "manifest.json").read_text())
    assert manifest["metrics"]["speed_gate"]["why"] == gate["why"]
    assert manifest["precision"] == "int8" and manifest["kernels"]["int8"] > 0
    assert manifest["metrics"]["accuracy"]["within_budget"]
    saved = json.loads((tmp_path / "compile.json").read_text())
    assert saved["default"] == result.default


def test_openvino_cpu_bundles_carry_an_ir_and_reuse_the_compiled_model_cache(
        mnist: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # the cache hint is under ~
    result = compile_model(mnist["int8"], tmp_path / "out", target="x86-avx2",
                           fp32=mnist["fp32"], samples=mnist["samples"], name="mnist",
                           backend="openvino", gate_plan=QUICK)
    bundle = Path(result.bundles["int8"])
    assert bundle.name == "mnist-x86-avx2-int8-openvino"
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["model_file"] == "model.xml" and manifest["target"]["backend"] == "openvino"
    assert manifest["runtime_hints"] == {"CACHE_DIR": "~/.cache/frugalml/openvino"}
    check = result.verification["int8"]
    assert check["status"] == "verified" and check["max_abs_error"] <= 0.05
    assert check["kernels_ran"]["quantized"] >= 3  # OpenVINO's exec types say I8/U8
    assert result.speed_gate is not None
    assert result.speed_gate["settings"]["backend"] == "openvino"
    cache = tmp_path / "home" / ".cache" / "frugalml" / "openvino"
    blobs = sorted(cache.glob("*.blob"))
    assert blobs, "verification compiled the model into the cache"
    with runtime.load(bundle) as model:  # a later load imports the cached blob
        model.self_check()
    assert sorted(cache.glob("*.blob")) == blobs
    with pytest.raises(TargetError, match="phone targets run the ONNX Runtime Mobile format"):
        compile_model(mnist["int8"], tmp_path / "o2", target="android-arm64",
                      samples=mnist["samples"], backend="openvino")


def test_android_bundle_ships_ort_and_ops_config_checked_on_the_desktop(
        mnist: dict, tmp_path: Path) -> None:
    result = compile_model(mnist["int8"], tmp_path, target="android-arm64",
                           samples=mnist["samples"], name="mnist")
    bundle = Path(result.bundles["int8"])
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["model_file"] == "model.ort"
    assert set(manifest["files"]) == {"model.ort", "required_operators_and_types.config",
                                      "samples.npz"}
    check = result.verification["int8"]
    assert check["status"] == "verified" and "desktop ONNX Runtime" in check["how"]
    assert check["min_cosine"] >= 0.999
    assert result.speed_gate is None and result.default == "int8"
    if read_host().machine != "aarch64":
        with pytest.raises(TargetError, match="targets android-arm64 \\(aarch64\\)"):
            runtime.load(bundle)  # a bundle for another CPU class is refused


def test_igpu_bundle_is_an_fp16_ir_and_running_it_without_a_gpu_is_a_target_error(
        mnist: dict, tmp_path: Path) -> None:
    result = compile_model(mnist["fp32"], tmp_path, target="igpu", samples=mnist["samples"],
                           name="mnist", probes=NO_GPU)
    bundle = Path(result.bundles["fp16"])
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["model_file"] == "model.xml" and manifest["target"]["device"] == "GPU"
    assert manifest["precision"] == "fp16"
    assert manifest["runtime_hints"] == {"INFERENCE_PRECISION_HINT": "f16"}
    onnx_bytes = (mnist["fp32"] / "model.onnx").stat().st_size
    assert (bundle / "model.bin").stat().st_size < 0.6 * onnx_bytes  # FP16 weights
    check = result.verification["fp16"]
    assert check["status"] == "not verified here" and "Intel GPU" in check["why"]
    assert check["cpu_numerics"]["min_cosine"] >= 0.9999  # the FP16 IR, run on the CPU
    assert check["cpu_numerics"]["max_abs_error"] <= 0.05
    import openvino as ov

    if "GPU" not in ov.Core().available_devices:
        with pytest.raises(TargetError, match="not GPU.*intel-opencl-icd"):
            runtime.load(bundle)


def test_avx512_bundle_says_not_verified_on_a_host_without_vnni(mnist: dict,
                                                                 tmp_path: Path) -> None:
    result = compile_model(mnist["int8"], tmp_path, target="x86-avx512",
                           samples=mnist["samples"], name="mnist", fp32=mnist["fp32"])
    check = result.verification["int8"]
    if {"avx512f", "avx512_vnni"} <= set(read_host().flags):
        assert check["status"] == "verified" and result.speed_gate is not None
    else:
        assert check["status"] == "not verified here" and "avx512_vnni" in check["why"]
        assert result.speed_gate is None  # never timed where it cannot run: no default change
        assert result.default == "int8"


def test_bad_compile_inputs(mnist: dict, tmp_path: Path) -> None:
    with pytest.raises(TargetError, match="Unknown target 'x86-sse'.*x86-avx2"):
        compile_model(mnist["int8"], tmp_path, target="x86-sse", samples=mnist["samples"])
    (tmp_path / "m.xml").write_text("<net/>")
    with pytest.raises(TargetError, match="not an .onnx model"):
        compile_model(tmp_path / "m.xml", tmp_path / "o", target="x86-avx2",
                      samples=mnist["samples"])
    from frugalml.errors import BundleError

    with pytest.raises(BundleError, match="do not match model inputs"):
        compile_model(mnist["int8"], tmp_path / "o", target="x86-avx2",
                      samples={"pixels": np.zeros((1, 1, 28, 28), np.float32)})
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_compile_cli_prints_the_verification_and_the_default(
        mnist: dict, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from frugalml.cli import main

    digits, labels = mnist_batch(120)
    np.savez(tmp_path / "digits.npz", image=digits, labels=labels)
    assert main(["calibrate", str(tmp_path / "digits.npz"), "--model",
                 str(mnist["fp32"] / "model.onnx"), "--out", str(tmp_path / "cal"),
                 "--num", "60"]) == 0
    capsys.readouterr()
    assert main(["compile", str(mnist["int8"]), "--target", "android-arm64", "--data",
                 str(tmp_path / "cal"), "--out", str(tmp_path / "out"), "--fp32",
                 str(mnist["fp32"]), "--samples", "4"]) == 0
    text = capsys.readouterr().out
    assert "verified desktop ONNX Runtime" in text
    assert "speed gate: not measured" in text and "default for android-arm64: int8" in text
    assert main(["compile", str(mnist["int8"]), "--target", "nope", "--data",
                 str(tmp_path / "cal"), "--out", str(tmp_path / "o2")]) == 2
    assert "Unknown target 'nope'" in capsys.readouterr().err


def test_verify_checks_a_phone_bundle_on_the_desktop_and_refuses_one_nothing_here_runs(
        mnist: dict, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from frugalml.cli import main

    phone = compile_model(mnist["int8"], tmp_path / "p", target="android-arm64",
                          samples=mnist["samples"], name="mnist").bundles["int8"]
    if read_host().machine != "aarch64":
        assert main(["verify", phone, "--json"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["status"] == "verified" and "desktop ONNX Runtime" in out["how"]
    if not {"avx512f", "avx512_vnni"} <= set(read_host().flags):
        avx512 = compile_model(mnist["int8"], tmp_path / "a", target="x86-avx512",
                               samples=mnist["samples"], name="mnist").bundles["int8"]
        assert main(["verify", avx512]) == 2
        err = capsys.readouterr().err
        assert "needs CPU features" in err and "Not verified here: missing" in err
        assert "avx512_vnni" in err
