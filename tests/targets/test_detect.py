"""Host parsing and target detection from /proc/cpuinfo text."""

from __future__ import annotations

import dataclasses

import pytest

from frugalml.errors import TargetError
from frugalml.runtime.host import parse_cpuinfo, read_host
from frugalml.targets import detect, get_target, support

X86 = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse2 avx avx2 fma\n\nprocessor: 1\n"
ARM = "processor\t: 0\nFeatures\t: fp asimd asimddp\nCPU implementer\t: 0x41\n"


def test_parse_cpuinfo() -> None:
    assert parse_cpuinfo(X86) == ("AMD EPYC", ("avx", "avx2", "fma", "fpu", "sse2"))
    assert parse_cpuinfo(ARM)[1] == ("asimd", "asimddp", "fp")


def _host(flags: tuple[str, ...], machine: str = "x86_64"):  # type: ignore[no-untyped-def]
    return dataclasses.replace(read_host(), flags=flags, machine=machine)


def test_detect_prefers_vnni_when_present() -> None:
    assert detect(_host(("avx2", "fma"))).name == "x86-avx2"
    assert detect(_host(("avx2", "fma", "avx512f", "avx512_vnni"))).name == "x86-avx512"
    table = support(_host(("avx2", "fma")))
    assert table["x86-avx2"] == () and table["x86-avx512"] == ("avx512_vnni", "avx512f")


def test_no_native_target_and_unknown_target() -> None:
    with pytest.raises(TargetError, match="No built-in target runs natively"):
        detect(_host(("asimd",), machine="aarch64"))
    with pytest.raises(TargetError, match="Known targets: x86-avx512, x86-avx2"):
        get_target("riscv")


def test_this_host_is_read_not_assumed() -> None:
    host = read_host()
    text = open("/proc/cpuinfo").read()
    assert host.flags == parse_cpuinfo(text)[1]
    assert detect(host).name == ("x86-avx512" if host.has("avx512_vnni", "avx512f")
                                 else "x86-avx2")
