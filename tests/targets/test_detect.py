"""Host parsing and target detection from /proc/cpuinfo text."""

from __future__ import annotations

import dataclasses

import pytest

from frugalml.errors import TargetError
from frugalml.runtime.host import parse_cpuinfo, read_host
from frugalml.targets import detect, get_target, support
from frugalml.targets.support import Probes, Runs, Support

X86 = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse2 avx avx2 fma\n\nprocessor: 1\n"
ARM = "processor\t: 0\nFeatures\t: fp asimd asimddp\nCPU implementer\t: 0x41\n"


NOTHING = Probes(qemu_aarch64=False, intel_gpu=False, opencl=False)


def test_parse_cpuinfo() -> None:
    assert parse_cpuinfo(X86) == ("AMD EPYC", ("avx", "avx2", "fma", "fpu", "sse2"))
    assert parse_cpuinfo(ARM)[1] == ("asimd", "asimddp", "fp")


def _host(flags: tuple[str, ...], machine: str = "x86_64"):  # type: ignore[no-untyped-def]
    return dataclasses.replace(read_host(), flags=flags, machine=machine)


def test_detect_prefers_vnni_when_present() -> None:
    assert detect(_host(("avx2", "fma"))).name == "x86-avx2"
    assert detect(_host(("avx2", "fma", "avx512f", "avx512_vnni"))).name == "x86-avx512"
    bf16 = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16")
    assert detect(_host(bf16)).name == "x86-avx512-bf16"
    assert detect(_host((*bf16, "amx_int8", "amx_bf16"))).name == "x86-amx"
    assert detect(_host((*bf16, "amx_int8"))).name == "x86-avx512-bf16"  # AMX without bf16
    table = support(_host(("avx2", "fma")), NOTHING)
    assert table["x86-avx2"] == Support(Runs.NATIVE, ())
    assert table["x86-avx512"] == Support(Runs.NO, ("avx512_vnni", "avx512f"))


def test_no_native_target_and_unknown_target() -> None:
    with pytest.raises(TargetError, match="No built-in target runs natively"):
        detect(_host(("fp",), machine="aarch64"))
    with pytest.raises(TargetError, match="Known targets: x86-amx, x86-avx512-bf16, x86-avx512, "
                                          "x86-avx2, arm64"):
        get_target("riscv")


def test_this_host_is_read_not_assumed() -> None:
    host = read_host()
    text = open("/proc/cpuinfo").read()
    assert host.flags == parse_cpuinfo(text)[1]
    caps = host.capabilities
    assert detect(host).name == (
        "x86-amx" if caps.amx and caps.bf16 else "x86-avx512-bf16" if caps.bf16 and
        host.has("avx512_vnni", "avx512f") else "x86-avx512" if host.has("avx512_vnni",
                                                                          "avx512f")
        else "x86-avx2")


def test_every_target_says_how_this_host_can_run_it() -> None:
    """An AVX2 host without QEMU or a GPU; then with QEMU; then an ARM host with dotprod."""
    x86 = _host(("avx2", "fma"))
    table = support(x86, NOTHING)
    assert table["arm64"].runs == Runs.NO
    assert table["arm64"].missing == ("architecture aarch64 (host is x86_64)",
                                      "qemu-aarch64 user-mode emulation (apt-get install "
                                      "qemu-user-static)")
    assert table["android-arm64"].runs == table["ios-arm64"].runs == Runs.DESKTOP_CHECK
    assert table["igpu"] == Support(Runs.NO, (
        "an Intel GPU (no /dev/dri/renderD* node)",
        "libOpenCL.so.1 (the GPU plugin's OpenCL loader)"))
    with_qemu = support(x86, Probes(qemu_aarch64=True, intel_gpu=False, opencl=True))
    assert with_qemu["arm64"].runs == with_qemu["arm64-a72"].runs == Runs.EMULATED
    assert with_qemu["igpu"].missing == ("an Intel GPU (no /dev/dri/renderD* node)",)
    arm = _host(("fp", "asimd", "asimddp", "asimdhp"), machine="aarch64")
    assert detect(arm).name == "arm64"
    # dot product without fp16 arithmetic (no such core is common): the v8.0 target
    assert detect(_host(("fp", "asimd", "asimddp"), machine="aarch64")).name == "arm64-a72"
    assert support(arm, NOTHING)["x86-avx2"].runs == Runs.NO
    assert detect(_host(("fp", "asimd"), machine="aarch64")).name == "arm64-a72"


def test_a_gpu_target_is_never_picked_and_gets_only_gpu_candidates() -> None:
    from frugalml.deploy.candidates import CNN, TRANSFORMER, candidates_for

    assert detect(_host(("avx2", "fma"))).device == "CPU"
    for family in (CNN, TRANSFORMER):
        assert [c.name for c in candidates_for(family, get_target("igpu"), ("all",))] == ["fp16"]
        assert "fp16" not in [c.name for c in candidates_for(family, get_target("x86-avx2"),
                                                                ("all",))]
