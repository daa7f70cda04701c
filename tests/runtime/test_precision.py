"""A bundle runs at the float precision it was validated at, read back from the backend: f32
bundles at f32 (OpenVINO's own default is bf16 on AMX/AVX512-BF16 CPUs), bf16 bundles at bf16,
and a bf16 bundle on a CPU without native bf16 is refused at load, before anything runs."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

import frugalml.runtime as rt
from frugalml.calibration import from_items, make_set
from frugalml.errors import QuantizationError, TargetError
from frugalml.quantize.api import quantize
from frugalml.runtime.host import read_host
from frugalml.targets import detect, get_target
from frugalml.targets.compile import build_bundle
from tests.quantize.test_contract import mlp_onnx

HOST = read_host()
NO_BF16 = "this host has no native bf16 (avx512_bf16 / amx_bf16): the bf16 path is refused"
# The bf16 target this host runs natively, so its bundles verify here: x86-amx on an AMX Xeon,
# x86-avx512-bf16 on a Zen 4 (a bundle for x86-amx is "not verified here" on the Zen 4).
BF16_TARGET = detect(HOST).name if HOST.capabilities.bf16 else "x86-amx"


@pytest.fixture(scope="module")
def mlp(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object, dict[str, np.ndarray]]:
    root = tmp_path_factory.mktemp("precision")
    rng = np.random.default_rng(3)
    items = [{"x": rng.normal(0, 1, 64).astype(np.float32)} for _ in range(160)]
    data = make_set(from_items(items, labels=[i % 10 for i in range(160)]), calibration_size=64)
    samples = {"x": np.stack([i["x"] for i in items[:4]])}
    return mlp_onnx(root / "model.onnx"), data, samples


def _zen3_like(host=HOST):
    """This host without any bf16 or AMX flag (an AVX2/AVX-512 CPU of the same machine)."""
    drop = {"avx512_bf16", "amx_bf16", "amx_int8", "amx_tile", "amx_fp16", "avx512_fp16"}
    return dataclasses.replace(host, flags=tuple(f for f in host.flags if f not in drop))


def test_an_f32_ir_bundle_runs_at_f32_and_a_bf16_request_is_refused_without_bf16(
        mlp: tuple[Path, object, dict[str, np.ndarray]], tmp_path: Path) -> None:
    model, data, samples = mlp
    q = quantize(model, data, tmp_path / "q", recipe="fp32", backend="nncf", target="x86-avx2",
                 output_format="openvino", eval_items=64, allow_over_budget=True)
    assert q.accuracy["scored_with"] == "OpenVINO at f32 on this host"
    # The IR's XML is 18 % of this 17 KB toy (over fp32's 1.01 size limit); outputs are exact.
    assert [c["name"] for c in q.accuracy["checks"] if not c["passed"]] == ["size vs FP32"]
    assert q.accuracy["candidate"]["mean_cosine_to_fp32"] > 0.999999
    bundle = tmp_path / "b"
    precision, check = build_bundle(tmp_path / "q", bundle, target=get_target("x86-avx2"),
                                    samples=samples)
    assert precision == "fp32" and check["status"] == "verified"
    with rt.load(bundle) as f32:
        assert f32.backend == "openvino" and f32.inference_precision == "fp32"
        assert f32.manifest.compute_precision == "fp32"
    with rt.load(bundle) as again:
        assert again.self_check()["max_abs_error"] <= 1e-5
    # The same bundle with its manifest asking for bf16: refused on a CPU without bf16.
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["runtime_hints"]["INFERENCE_PRECISION_HINT"] = "bf16"
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(TargetError, match=r"validated at bf16.*no native bf16.*avx512_bf16"):
        rt.load(bundle, host=_zen3_like())
    if HOST.capabilities.bf16:
        with rt.load(bundle) as bf16:
            assert bf16.inference_precision == "bf16"


@pytest.mark.skipif(not HOST.capabilities.bf16, reason=NO_BF16)
def test_a_bf16_candidate_is_scored_bundled_and_run_at_bf16(
        mlp: tuple[Path, object, dict[str, np.ndarray]], tmp_path: Path) -> None:
    model, data, samples = mlp
    q = quantize(model, data, tmp_path / "q", recipe="bf16", backend="nncf",
                 target=BF16_TARGET, output_format="openvino", eval_items=96)
    assert q.precision == "bf16" and q.accuracy["scored_with"] == "OpenVINO at bf16 on this host"
    cosine = q.accuracy["candidate"]["mean_cosine_to_fp32"]
    assert 0.999 <= cosine < 1.0 - 1e-7, cosine  # bf16 really ran: close to FP32, not equal
    precision, check = build_bundle(tmp_path / "q", tmp_path / "b",
                                    target=get_target(BF16_TARGET), samples=samples)
    assert precision == "bf16" and check["status"] == "verified"
    assert check["max_abs_error"] <= 1e-6  # expected outputs were computed at bf16 too
    with rt.load(tmp_path / "b") as model_bf16:
        assert model_bf16.inference_precision == "bf16"
        assert model_bf16.manifest.runtime_hints["INFERENCE_PRECISION_HINT"] == "bf16"
    with pytest.raises(TargetError, match="amx_bf16|avx512_bf16"):  # what the CPU lacks
        rt.load(tmp_path / "b", host=_zen3_like())


def test_bf16_is_refused_where_it_cannot_be_computed_or_scored(
        mlp: tuple[Path, object, dict[str, np.ndarray]], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    model, data, _ = mlp
    with pytest.raises(QuantizationError, match="x86-avx2 does not guarantee native bf16"):
        quantize(model, data, tmp_path / "a", recipe="bf16", backend="nncf",
                 target="x86-avx2", output_format="openvino")
    with pytest.raises(QuantizationError,
                       match="computed by OpenVINO.*--format openvino.*no bf16 path"):
        quantize(model, data, tmp_path / "b", recipe="bf16", backend="onnxruntime",
                 target="x86-amx")
    # A host without bf16 cannot score it (OpenVINO would ignore the hint: FP32's scores).
    import frugalml.quantize.api as quantize_api

    monkeypatch.setattr(quantize_api, "read_host", lambda *a, **k: _zen3_like())
    with pytest.raises(QuantizationError, match="cannot be scored on this host.*no native bf16"):
        quantize(model, data, tmp_path / "c", recipe="bf16", backend="nncf", target="x86-amx",
                 output_format="openvino")
    assert not any((tmp_path / d).exists() for d in "abc")


@pytest.mark.skipif(not HOST.capabilities.bf16, reason=NO_BF16)
def test_int8_with_its_float_ops_at_bf16_is_scored_bundled_and_run_at_bf16(
        mlp: tuple[Path, object, dict[str, np.ndarray]], tmp_path: Path) -> None:
    """int8-bf16-openvino: the same NNCF INT8 IR, its float ops (here the output layer, kept
    float) computed in bf16, scored at bf16 (its scores differ from the f32 run's) and
    bundled to run at bf16."""
    from frugalml.quantize.recipe import get_recipe

    model, data, samples = mlp
    runs = {}
    for floats in ("fp32", "bf16"):
        runs[floats] = quantize(model, data, tmp_path / floats, backend="nncf",
                                recipe=get_recipe("int8", float_precision=floats,
                                                  ignored_nodes=("logits",)),
                                target=BF16_TARGET, output_format="openvino", eval_items=96,
                                allow_over_budget=True)  # a 17 KB toy: IR text is most of it
    f32, bf16 = runs["fp32"], runs["bf16"]
    assert (f32.precision, bf16.precision) == ("int8", "int8")
    assert bf16.int8_activation_layers == f32.int8_activation_layers == ("fc1",)
    assert f32.accuracy["scored_with"] == "OpenVINO at f32 on this host"
    assert bf16.accuracy["scored_with"] == "OpenVINO at bf16 on this host"
    cosines = [r.accuracy["candidate"]["mean_cosine_to_fp32"] for r in (f32, bf16)]
    assert cosines[1] >= 0.99 and abs(cosines[0] - cosines[1]) > 1e-7, cosines  # bf16 ran
    precision, check = build_bundle(tmp_path / "bf16", tmp_path / "b",
                                    target=get_target(BF16_TARGET), samples=samples)
    assert precision == "int8" and check["status"] == "verified"
    with rt.load(tmp_path / "b") as bundle:
        assert bundle.manifest.runtime_hints["INFERENCE_PRECISION_HINT"] == "bf16"
        assert bundle.inference_precision == "bf16"
    build_bundle(tmp_path / "fp32", tmp_path / "f", target=get_target(BF16_TARGET),
                 samples=samples)
    with rt.load(tmp_path / "f") as bundle:
        assert bundle.inference_precision == "fp32"  # an INT8 IR's float ops at f32


def test_float_ops_at_bf16_need_openvino_and_a_bf16_target(
        mlp: tuple[Path, object, dict[str, np.ndarray]], tmp_path: Path) -> None:
    from frugalml.quantize.recipe import get_recipe

    model, data, _ = mlp
    recipe = get_recipe("int8", float_precision="bf16")
    with pytest.raises(QuantizationError, match="computed by OpenVINO.*--format openvino"):
        quantize(model, data, tmp_path / "a", recipe=recipe, target="x86-amx")
    with pytest.raises(QuantizationError, match="x86-avx2 does not guarantee native bf16"):
        quantize(model, data, tmp_path / "b", recipe=recipe, backend="nncf",
                 target="x86-avx2", output_format="openvino")
    with pytest.raises(QuantizationError, match="float_precision 'fp16' is not one of"):
        get_recipe("int8", float_precision="fp16")
    assert not any((tmp_path / d).exists() for d in "ab")
