"""Capabilities come from the flags, never from a table of model numbers: saved /proc/cpuinfo
texts of five CPU classes -> what they compute natively -> the target detected -> the
candidates a deploy tries there.

The AMX Xeon text is this project's CI host as its hypervisor shows it (model 167 masked);
the Zen 4 and Cortex-A72 texts are the Zen 3 and Neoverse-N1 ones with those CPUs' documented
feature sets (Zen 4: AVX-512 with VNNI and BF16, no AMX; A72: ARMv8.0, no dot product)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from frugalml.deploy.candidates import CNN, TRANSFORMER, candidates_for, not_offered
from frugalml.runtime.capabilities import Capabilities
from frugalml.runtime.host import describe_host, read_host
from frugalml.targets import detect

CPUINFO = Path(__file__).parent / "cpuinfo"

# fixture, machine -> precisions computed natively, INT8 dot product, AMX, target detected,
# default CNN candidates there, default transformer candidates there
CASES = {
    "intel-xeon-amx-masked-model-167.txt": (
        "x86_64", ("fp32", "bf16", "fp16"), True, True, "x86-amx",
        ["int8-static", "int8-openvino", "bf16-openvino"],
        ["fp32-fused", "int8-static", "int8-dynamic", "int8-dynamic-fused", "int8-openvino",
         "bf16-openvino"]),
    "amd-epyc-9r14-zen4.txt": (
        "x86_64", ("fp32", "bf16"), True, False, "x86-avx512-bf16",
        ["int8-static", "bf16-openvino"],
        ["fp32-fused", "int8-static", "int8-dynamic", "int8-dynamic-fused", "bf16-openvino"]),
    "intel-xeon-8375c-icelake-sp.txt": (
        "x86_64", ("fp32",), True, False, "x86-avx512", ["int8-static"],
        ["fp32-fused", "int8-static", "int8-dynamic", "int8-dynamic-fused"]),
    "amd-epyc-7b13-zen3.txt": (
        "x86_64", ("fp32",), False, False, "x86-avx2", ["int8-static"],
        ["fp32-fused", "int8-static", "int8-dynamic", "int8-dynamic-fused"]),
    "arm-neoverse-n1.txt": (
        "aarch64", ("fp32", "fp16"), True, False, "arm64", ["int8-static", "fp16-cpu"],
        ["fp32-fused", "int8-static", "int8-dynamic", "int8-dynamic-fused", "fp16-cpu"]),
    "arm-cortex-a72.txt": (
        "aarch64", ("fp32",), False, False, "arm64-a72", ["int8-static"],
        ["fp32-fused", "int8-static", "int8-dynamic", "int8-dynamic-fused"]),
}


def _host(fixture: str, machine: str, tmp_path: Path):
    return dataclasses.replace(read_host(CPUINFO / fixture, caches=tmp_path), machine=machine)


@pytest.mark.parametrize("fixture", list(CASES))
def test_saved_cpuinfo_decides_capabilities_target_and_candidates(fixture: str,
                                                                  tmp_path: Path) -> None:
    machine, precisions, int8_dot, amx, target, cnn, transformer = CASES[fixture]
    host = _host(fixture, machine, tmp_path)
    caps = host.capabilities
    assert (caps.precisions, caps.int8_dot, caps.amx) == (precisions, int8_dot, amx)
    chosen = detect(host)
    assert chosen.name == target
    assert [c.name for c in candidates_for(CNN, chosen, ("default",))] == cnn
    assert [c.name for c in candidates_for(TRANSFORMER, chosen, ("default",))] == transformer
    # a model that came as OpenVINO IR has one candidate, NNCF's IR to IR, on every CPU (it
    # was offered only where int8-openvino is a default for ONNX sources: AMX)
    assert [c.name for c in candidates_for(CNN, chosen, ("default",),
                                           source_format="openvino")] == ["int8-openvino"]
    # bf16 (a bf16 IR, or INT8 with its float ops at bf16) is offered exactly where every
    # CPU of the target computes it natively
    for name in ("bf16-openvino", "int8-bf16-openvino"):
        offered = any(c.name == name for c in candidates_for(CNN, chosen, ("all",)))
        assert offered == ("bf16" in chosen.capabilities.precisions)
        assert offered == (name not in not_offered(chosen))
        if not offered:
            assert "native bf16" in not_offered(chosen)[name]


def test_a_masked_model_number_is_named_by_what_the_flags_prove(tmp_path: Path) -> None:
    """The AMX Xeon reports family 6 model 167 (a client part's number): no microarchitecture
    is guessed, and the description says what the flags prove instead."""
    host = _host("intel-xeon-amx-masked-model-167.txt", "x86_64", tmp_path)
    assert host.microarchitecture == "unknown"
    text = describe_host(host.to_dict())
    assert "family 6 model 167" in text
    assert "Intel, AMX-INT8 + AMX-BF16 + AVX512-BF16 + AVX512-FP16 + AVX512-VNNI" in text
    zen4 = _host("amd-epyc-9r14-zen4.txt", "x86_64", tmp_path)
    assert "Zen 4" in describe_host(zen4.to_dict())
    assert "AMD, AVX512-BF16 + AVX512-VNNI + AVX2" in describe_host(zen4.to_dict())


def test_capabilities_missing_for_says_what_is_absent() -> None:
    zen3 = Capabilities.from_flags("x86_64", ("avx2", "fma"))
    assert zen3.computes("fp32") and zen3.computes("int8") and not zen3.computes("bf16")
    assert "amx_bf16 or avx512_bf16" in zen3.missing_for("bf16")
    assert zen3.missing_for("fp32") == ""
    a72 = Capabilities.from_flags("aarch64", ("fp", "asimd"))
    assert "asimdhp" in a72.missing_for("fp16") and a72.describe("ARM", 0x41) == "Arm, NEON"
    graviton3 = Capabilities.from_flags("aarch64", ("asimd", "asimdhp", "asimddp", "bf16",
                                                    "i8mm"))
    assert graviton3.precisions == ("fp32", "bf16", "fp16") and graviton3.int8_dot
