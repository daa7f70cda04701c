"""Read the host and say, for every target, whether it runs here natively, under emulation, as
an artifact checked with the desktop runtime, or not at all (and what is missing)."""

from __future__ import annotations

import ctypes.util
import dataclasses
import glob
import os
import shutil
from enum import StrEnum

from frugalml.errors import TargetError
from frugalml.runtime.host import Host, read_host
from frugalml.targets.profiles import TARGETS, Target


class Runs(StrEnum):
    """How this host can run (or check) a target."""

    NATIVE = "native"
    EMULATED = "emulated"  # QEMU user-mode for another architecture
    DESKTOP_CHECK = "desktop-check"  # phone artifact: loads and runs in desktop ONNX Runtime
    NO = "cannot run here"


@dataclasses.dataclass(frozen=True, slots=True)
class Probes:
    """What the host offers beyond its CPU flags; read from the system unless given (tests)."""

    qemu_aarch64: bool
    intel_gpu: bool
    opencl: bool

    @classmethod
    def read(cls) -> Probes:
        """Look for a QEMU aarch64 user-mode emulator, a GPU render node and libOpenCL."""
        qemu = (os.path.exists("/proc/sys/fs/binfmt_misc/qemu-aarch64")
                or shutil.which("qemu-aarch64-static") is not None
                or shutil.which("qemu-aarch64") is not None)
        return cls(qemu_aarch64=qemu, intel_gpu=bool(glob.glob("/dev/dri/renderD*")),
                   opencl=ctypes.util.find_library("OpenCL") is not None)


@dataclasses.dataclass(frozen=True, slots=True)
class Support:
    """A target's status on this host, with what is missing for native runs."""

    runs: Runs
    missing: tuple[str, ...]


def missing_for(target: Target, host: Host, probes: Probes | None = None) -> tuple[str, ...]:
    """What the host lacks to run ``target`` natively: architecture, ISA features, device."""
    if host.machine != target.machine:
        return (f"architecture {target.machine} (host is {host.machine})",)
    missing = sorted(set(target.required_features) - set(host.flags))
    if target.device == "GPU":
        probes = probes or Probes.read()
        missing += [] if probes.intel_gpu else ["an Intel GPU (no /dev/dri/renderD* node)"]
        missing += [] if probes.opencl else ["libOpenCL.so.1 (the GPU plugin's OpenCL loader)"]
    return tuple(missing)


def status(target: Target, host: Host, probes: Probes) -> Support:
    """Native, emulated, desktop-checked or not runnable here, and why."""
    missing = missing_for(target, host, probes)
    if not missing:
        return Support(Runs.NATIVE, ())
    if target.artifact == "ort":
        return Support(Runs.DESKTOP_CHECK, missing)
    if target.machine == "aarch64" and target.device == "CPU":
        if probes.qemu_aarch64:
            return Support(Runs.EMULATED, missing)
        missing += ("qemu-aarch64 user-mode emulation (apt-get install qemu-user-static)",)
    return Support(Runs.NO, missing)


def support(host: Host | None = None, probes: Probes | None = None) -> dict[str, Support]:
    """Every built-in target's status on this host."""
    host, probes = host or read_host(), probes or Probes.read()
    return {name: status(t, host, probes) for name, t in TARGETS.items()}


def detect(host: Host | None = None) -> Target:
    """The most capable built-in CPU target with an ONNX artifact this host runs natively
    (profiles are ordered best-first).

    Raises:
        TargetError: no built-in CPU target runs on this host.
    """
    host = host or read_host()
    for target in TARGETS.values():
        if target.device == "CPU" and target.artifact == "onnx" and not missing_for(target,
                                                                                    host):
            return target
    raise TargetError(
        f"No built-in target runs natively on this host ({host.machine}, {host.cpu_model}). "
        f"Known targets: {', '.join(TARGETS)}."
    )
