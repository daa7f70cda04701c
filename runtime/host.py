"""Read the host this process runs on: CPU vendor, family/model/stepping and microarchitecture,
caches, ISA flags, cores, hypervisor, governor, library versions."""

from __future__ import annotations

import dataclasses
import os
import platform
from pathlib import Path
from typing import Any

from frugalml.runtime.capabilities import Capabilities
from frugalml.runtime.microarch import microarchitecture

_CPUINFO = Path("/proc/cpuinfo")
_GOVERNOR = Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
_CACHES = Path("/sys/devices/system/cpu/cpu0/cache")
PERFORMANCE, NO_CPUFREQ = "performance", "none (no cpufreq)"  # governors that need no advice
_LIBRARIES = ("numpy", "onnxruntime", "openvino")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Host:
    """A fingerprint of the machine, recorded beside every measurement made on it."""

    schema_version: int = 2
    machine: str
    cpu_model: str
    flags: tuple[str, ...]
    logical_cores: int
    governor: str
    python: str
    libraries: tuple[tuple[str, str], ...]
    vendor: str = "unknown"
    family: int | None = None  # CPUID family (x86) or MIDR implementer (Arm)
    model: int | None = None  # CPUID model (x86) or MIDR part number (Arm)
    stepping: int | None = None  # stepping (x86) or variant.revision as variant*16+rev (Arm)
    microarchitecture: str = "unknown"
    l2_kib: int | None = None
    l3_kib: int | None = None
    hypervisor: str = "unknown"

    def has(self, *features: str) -> bool:
        """True when every named ISA feature (a /proc/cpuinfo flag) is present."""
        return set(features) <= set(self.flags)

    @property
    def capabilities(self) -> Capabilities:
        """What the flags prove this CPU computes natively (INT8 dot, AMX, bf16, fp16)."""
        return Capabilities.from_flags(self.machine, self.flags)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        d = dataclasses.asdict(self)
        d["flags"] = list(self.flags)
        d["libraries"] = dict(self.libraries)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Host:
        """Inverse of :meth:`to_dict`; records written before schema 2 read as unknown CPUs."""
        extra = {f: data[f] for f in ("vendor", "family", "model", "stepping",
                                      "microarchitecture", "l2_kib", "l3_kib", "hypervisor")
                 if f in data}
        return cls(
            schema_version=int(data.get("schema_version", 1)),
            machine=data["machine"],
            cpu_model=data["cpu_model"],
            flags=tuple(data["flags"]),
            logical_cores=int(data["logical_cores"]),
            governor=data["governor"],
            python=data["python"],
            libraries=tuple(sorted(data["libraries"].items())),
            **extra,
        )


def describe_host(host: dict[str, Any]) -> str:
    """One phrase naming the CPU for a speed verdict: its model name, the microarchitecture
    where the model number is known, family/model, and what its flags prove (a hypervisor may
    mask the model number; the flags still say "Intel, AMX-INT8 + AMX-BF16 + ...")."""
    name = host.get("cpu_model", "unknown CPU")
    arch = host.get("microarchitecture", "unknown")
    ids = (f"family {host['family']} model {host['model']}"
           if host.get("family") is not None and host.get("model") is not None else "")
    proven = describe_capabilities(host) if host.get("flags") else ""
    inner = ", ".join(x for x in (arch if arch != "unknown" else "", ids) if x)
    inner = "; ".join(x for x in (inner, proven) if x)
    return f"{name} ({inner})" if inner else name


def describe_capabilities(host: dict[str, Any]) -> str:
    """What a host record's flags prove, e.g. ``Intel, AMX-INT8 + AMX-BF16 + AVX512-BF16``."""
    caps = Capabilities.from_flags(host.get("machine", ""), host.get("flags", ()))
    vendor = host.get("vendor", "unknown")
    return caps.describe(vendor, host.get("family") if vendor == "ARM" else None)


def cpu_identity(text: str) -> dict[str, Any]:
    """Vendor, family, model, stepping and microarchitecture from /proc/cpuinfo text."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() not in fields:
            fields[key.strip().lower()] = value.strip()

    def number(key: str) -> int | None:
        value = fields.get(key, "")
        try:
            return int(value, 16) if value.lower().startswith("0x") else int(value)
        except ValueError:
            return None

    if "cpu implementer" in fields:  # Arm: MIDR fields, hexadecimal
        vendor, family, model = "ARM", number("cpu implementer"), number("cpu part")
        variant, revision = number("cpu variant"), number("cpu revision")
        stepping = None if variant is None or revision is None else variant * 16 + revision
    else:
        vendor = fields.get("vendor_id", "unknown")
        family, model, stepping = number("cpu family"), number("model"), number("stepping")
    return {"vendor": vendor, "family": family, "model": model, "stepping": stepping,
            "microarchitecture": microarchitecture(vendor, family, model, stepping)}


def cache_sizes(folder: Path = _CACHES) -> tuple[int | None, int | None]:
    """(L2, L3) of cpu0 in KiB from sysfs; None where the kernel does not say."""
    sizes: dict[str, int] = {}
    for index in sorted(folder.glob("index*")):
        try:
            level = (index / "level").read_text().strip()
            size = (index / "size").read_text().strip().upper()
        except OSError:
            continue
        factor = 1024 if size.endswith("M") else 1
        digits = size.rstrip("KM")
        if digits.isdigit():
            sizes[level] = int(digits) * factor
    return sizes.get("2"), sizes.get("3")


def parse_cpuinfo(text: str) -> tuple[str, tuple[str, ...]]:
    """Return (model name, sorted flags) from /proc/cpuinfo text (x86 `flags`, ARM `Features`)."""
    model, flags = "unknown", ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "cpu model", "hardware") and model == "unknown":
            model = value.strip()
        elif key in ("flags", "features") and not flags:
            flags = value
    return model, tuple(sorted(set(flags.split())))


def library_versions(names: tuple[str, ...] = _LIBRARIES) -> tuple[tuple[str, str], ...]:
    """Installed versions of the libraries that decide numerics and speed (absent ones skipped)."""
    import importlib.metadata  # ~70 ms; only needed when a benchmark records versions

    found = []
    for name in names:
        try:
            found.append((name, importlib.metadata.version(name)))
        except importlib.metadata.PackageNotFoundError:
            continue
    return tuple(found)


def read_host(cpuinfo: Path = _CPUINFO, caches: Path = _CACHES) -> Host:
    """Fingerprint this machine from /proc/cpuinfo and /sys; never assumes a feature."""
    text = cpuinfo.read_text() if cpuinfo.exists() else ""
    model, flags = parse_cpuinfo(text)
    governor = _GOVERNOR.read_text().strip() if _GOVERNOR.exists() else NO_CPUFREQ
    l2, l3 = cache_sizes(caches)
    return Host(
        **cpu_identity(text), l2_kib=l2, l3_kib=l3,
        hypervisor="present (cpuinfo flag)" if "hypervisor" in flags else "none seen",
        machine=platform.machine(),
        cpu_model=model,
        flags=flags,
        logical_cores=os.cpu_count() or 1,
        governor=governor,
        python=platform.python_version(),
        libraries=library_versions(),
    )
