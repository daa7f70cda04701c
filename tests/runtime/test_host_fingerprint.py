"""Host fingerprints name the microarchitecture, not only the ISA (saved /proc/cpuinfo texts)."""

from __future__ import annotations

from pathlib import Path

import pytest

from frugalml.runtime.host import Host, cache_sizes, describe_host, read_host
from frugalml.runtime.microarch import microarchitecture

CPUINFO = Path(__file__).parent / "cpuinfo"


@pytest.mark.parametrize(("fixture", "vendor", "family", "model", "stepping", "arch", "flag"), [
    ("amd-epyc-7b12-zen2.txt", "AuthenticAMD", 23, 49, 0, "Zen 2", "avx2"),
    ("amd-epyc-7b13-zen3.txt", "AuthenticAMD", 25, 1, 0, "Zen 3", "avx2"),
    ("intel-xeon-8375c-icelake-sp.txt", "GenuineIntel", 6, 106, 6, "Ice Lake-SP", "avx512_vnni"),
    ("arm-neoverse-n1.txt", "ARM", 0x41, 0xD0C, 0x31, "Neoverse-N1", "asimddp"),
])
def test_saved_cpuinfo_gives_vendor_family_model_and_microarchitecture(
        tmp_path: Path, fixture: str, vendor: str, family: int, model: int, stepping: int,
        arch: str, flag: str) -> None:
    host = read_host(CPUINFO / fixture, caches=tmp_path)
    assert (host.vendor, host.family, host.model, host.stepping) == (vendor, family, model,
                                                                     stepping)
    assert host.microarchitecture == arch and host.has(flag)
    assert arch in describe_host(host.to_dict())
    assert Host.from_dict(host.to_dict()) == host


def test_zen2_and_zen3_hosts_with_the_same_flags_are_told_apart(tmp_path: Path) -> None:
    zen2, zen3 = (read_host(CPUINFO / f, caches=tmp_path)
                  for f in ("amd-epyc-7b12-zen2.txt", "amd-epyc-7b13-zen3.txt"))
    assert zen2.has("avx2", "fma") and zen3.has("avx2", "fma")
    assert not zen2.has("avx512_vnni") and not zen3.has("avx512_vnni")
    assert zen2.microarchitecture != zen3.microarchitecture


@pytest.mark.parametrize(("vendor", "family", "model", "stepping", "arch"), [
    ("AuthenticAMD", 23, 1, 2, "Zen"), ("AuthenticAMD", 23, 8, 2, "Zen+"),
    ("AuthenticAMD", 25, 17, 1, "Zen 4"), ("AuthenticAMD", 25, 33, 0, "Zen 3"),
    ("AuthenticAMD", 26, 2, 0, "Zen 5"), ("GenuineIntel", 6, 85, 4, "Skylake-SP"),
    ("GenuineIntel", 6, 85, 7, "Cascade Lake"), ("GenuineIntel", 6, 143, 8, "Sapphire Rapids"),
    ("GenuineIntel", 6, 173, 1, "Granite Rapids"), ("ARM", 0x41, 0xD08, 0, "Cortex-A72"),
    ("ARM", 0x41, 0xD40, 1, "Neoverse-V1"), ("GenuineIntel", 6, 1, 0, "unknown"),
    ("HygonGenuine", 24, 0, 0, "unknown"), ("AuthenticAMD", None, None, None, "unknown"),
])
def test_microarchitecture_table(vendor: str, family: int | None, model: int | None,
                                 stepping: int | None, arch: str) -> None:
    assert microarchitecture(vendor, family, model, stepping) == arch


def test_cache_sizes_from_sysfs(tmp_path: Path) -> None:
    for i, (level, size) in enumerate([("1", "32K"), ("2", "1024K"), ("3", "32M")]):
        (tmp_path / f"index{i}").mkdir()
        (tmp_path / f"index{i}" / "level").write_text(level + "\n")
        (tmp_path / f"index{i}" / "size").write_text(size + "\n")
    assert cache_sizes(tmp_path) == (1024, 32768)
    assert cache_sizes(tmp_path / "absent") == (None, None)


def test_old_host_records_still_load() -> None:
    old = {"schema_version": 1, "machine": "x86_64", "cpu_model": "AMD EPYC", "flags": ["avx2"],
           "logical_cores": 2, "governor": "unknown", "python": "3.11.7", "libraries": {}}
    host = Host.from_dict(old)
    assert host.microarchitecture == "unknown" and describe_host(old) == "AMD EPYC (AVX2)"
