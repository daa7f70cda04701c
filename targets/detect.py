"""Read the host and say, for every target, whether it runs here natively, under emulation, as
an artifact checked with the desktop runtime, or not at all (and what is missing)."""

from __future__ import annotations

from frugalml.errors import TargetError
from frugalml.runtime.host import Host, read_host
from frugalml.targets.kinds import get_kind
from frugalml.targets.profiles import TARGETS, Target
from frugalml.targets.support import Probes, Support


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
    """Native, emulated, desktop-checked or not runnable here, and why (the target's kind
    says how it can be run where it is not native)."""
    return get_kind(target.artifact).runs(target, missing_for(target, host, probes), probes)


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
