"""Read the host this process runs on: CPU model, ISA flags, cores, governor, library versions."""

from __future__ import annotations

import dataclasses
import os
import platform
from pathlib import Path
from typing import Any

_CPUINFO = Path("/proc/cpuinfo")
_GOVERNOR = Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
_LIBRARIES = ("numpy", "onnxruntime", "openvino")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Host:
    """A fingerprint of the machine, recorded beside every measurement made on it."""

    schema_version: int = 1
    machine: str
    cpu_model: str
    flags: tuple[str, ...]
    logical_cores: int
    governor: str
    python: str
    libraries: tuple[tuple[str, str], ...]

    def has(self, *features: str) -> bool:
        """True when every named ISA feature (a /proc/cpuinfo flag) is present."""
        return set(features) <= set(self.flags)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        d = dataclasses.asdict(self)
        d["flags"] = list(self.flags)
        d["libraries"] = dict(self.libraries)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Host:
        """Inverse of :meth:`to_dict`."""
        return cls(
            schema_version=int(data.get("schema_version", 1)),
            machine=data["machine"],
            cpu_model=data["cpu_model"],
            flags=tuple(data["flags"]),
            logical_cores=int(data["logical_cores"]),
            governor=data["governor"],
            python=data["python"],
            libraries=tuple(sorted(data["libraries"].items())),
        )


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


def read_host(cpuinfo: Path = _CPUINFO) -> Host:
    """Fingerprint this machine from /proc/cpuinfo and /sys; never assumes a feature."""
    text = cpuinfo.read_text() if cpuinfo.exists() else ""
    model, flags = parse_cpuinfo(text)
    governor = _GOVERNOR.read_text().strip() if _GOVERNOR.exists() else "unknown"
    return Host(
        machine=platform.machine(),
        cpu_model=model,
        flags=flags,
        logical_cores=os.cpu_count() or 1,
        governor=governor,
        python=platform.python_version(),
        libraries=library_versions(),
    )
