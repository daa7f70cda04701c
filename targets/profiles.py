"""Built-in target profiles: what a CPU class needs, and the INT8 format fast and exact on it."""

from __future__ import annotations

import dataclasses
from enum import StrEnum
from typing import Any

from frugalml.errors import TargetError
from frugalml.runtime.manifest import TargetRequirements


class QuantFormat(StrEnum):
    """Activation x weight integer types of static INT8, as chosen by the instruction set."""

    # AVX2 without VNNI multiplies u8 x s8 with vpmaddubsw, whose int16 sums saturate at full
    # 8-bit weights; 7-bit weights (reduce_range) keep them exact (TARGETS.md).
    U8S8_REDUCED = "u8s8-reduce-range"
    # VNNI (vpdpbusd) and ARM sdot accumulate in int32 without saturation.
    S8S8 = "s8s8"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """A deployable CPU class: architecture, required ISA features, backend and INT8 format."""

    name: str
    machine: str
    required_features: tuple[str, ...]
    backend: str
    int8_format: QuantFormat
    description: str

    def requirements(self) -> TargetRequirements:
        """What the runtime checks against the host before running a bundle for this target."""
        return TargetRequirements(name=self.name, machine=self.machine,
                                  required_features=self.required_features, backend=self.backend)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        d = dataclasses.asdict(self)
        d["required_features"] = list(self.required_features)
        d["int8_format"] = self.int8_format.value
        return d


_BUILTIN = (
    Target(
        name="x86-avx512", machine="x86_64", required_features=("avx512f", "avx512_vnni"),
        backend="onnxruntime", int8_format=QuantFormat.S8S8,
        description="x86-64 with AVX-512 VNNI (Intel Ice Lake+, AMD Zen 4+): S8S8 QDQ INT8",
    ),
    Target(
        name="x86-avx2", machine="x86_64", required_features=("avx2", "fma"),
        backend="onnxruntime", int8_format=QuantFormat.U8S8_REDUCED,
        description="x86-64 with AVX2 and no VNNI: U8S8 QDQ INT8 with 7-bit weights",
    ),
)
TARGETS: dict[str, Target] = {t.name: t for t in _BUILTIN}


def get_target(name: str) -> Target:
    """Look up a built-in target by name.

    Raises:
        TargetError: the name is unknown; the message lists the known ones.
    """
    try:
        return TARGETS[name]
    except KeyError:
        raise TargetError(
            f"Unknown target {name!r}. Known targets: {', '.join(TARGETS)}; "
            "or pass 'auto' to pick the best one for this host."
        ) from None
