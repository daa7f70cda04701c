"""Read the host and say which targets it runs natively, and which is best."""

from __future__ import annotations

from frugalml.errors import TargetError
from frugalml.runtime.host import Host, read_host
from frugalml.targets.profiles import TARGETS, Target


def missing_for(target: Target, host: Host) -> tuple[str, ...]:
    """What the host lacks for ``target``: its architecture, or named ISA features."""
    if host.machine != target.machine:
        return (f"architecture {target.machine} (host is {host.machine})",)
    return tuple(sorted(set(target.required_features) - set(host.flags)))


def support(host: Host | None = None) -> dict[str, tuple[str, ...]]:
    """Map every target to what this host lacks for it (empty = runs natively)."""
    host = host or read_host()
    return {name: missing_for(t, host) for name, t in TARGETS.items()}


def detect(host: Host | None = None) -> Target:
    """The most capable built-in target this host runs natively (profiles are ordered best-first).

    Raises:
        TargetError: no built-in target runs on this host.
    """
    host = host or read_host()
    for target in TARGETS.values():
        if not missing_for(target, host):
            return target
    raise TargetError(
        f"No built-in target runs natively on this host ({host.machine}, {host.cpu_model}). "
        f"Known targets: {', '.join(TARGETS)}."
    )
