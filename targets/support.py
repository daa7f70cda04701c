"""How this host can run a target: natively, under emulation, as an artifact checked in the
desktop runtime, or not at all, with what is missing; and the host probes beyond CPU flags
(QEMU, an Intel GPU, OpenCL) that decide it."""

from __future__ import annotations

import ctypes.util
import dataclasses
import glob
import os
import shutil
from enum import StrEnum

from frugalml.targets.profiles import Target


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


def cpu_support(target: Target, missing: tuple[str, ...], probes: Probes) -> Support:
    """A CPU artifact's status: native where nothing is missing, under QEMU for an arm64 CPU
    target where user-mode emulation is installed, else not here (with what to install)."""
    if not missing:
        return Support(Runs.NATIVE, ())
    if target.machine == "aarch64" and target.device == "CPU":
        if probes.qemu_aarch64:
            return Support(Runs.EMULATED, missing)
        missing += ("qemu-aarch64 user-mode emulation (apt-get install qemu-user-static)",)
    return Support(Runs.NO, missing)
