"""Name the microarchitecture from CPUID family/model (x86) or MIDR implementer/part (Arm).

"AMD EPYC" with AVX2 was a Zen 2 on one host, where EfficientNet INT8 ran at 0.9x FP32, and
a Zen 3 on another, where it ran at 1.5x: flags alone do not say which machine measured a
number. The tables hold public CPUID/MIDR assignments; an unknown pair is "unknown", never
a guess.
"""

from __future__ import annotations

# AMD family 0x17 / 0x19 / 0x1A: model ranges (inclusive) of each core generation.
_AMD: dict[int, tuple[tuple[int, int, str], ...]] = {
    0x17: ((0x08, 0x08, "Zen+"), (0x18, 0x18, "Zen+"), (0x00, 0x2F, "Zen"),
           (0x30, 0xFF, "Zen 2")),
    0x19: ((0x00, 0x0F, "Zen 3"), (0x10, 0x1F, "Zen 4"), (0x20, 0x5F, "Zen 3"),
           (0x60, 0x7F, "Zen 4"), (0xA0, 0xAF, "Zen 4")),
    0x1A: ((0x00, 0xFF, "Zen 5"),),
}

# Intel family 6 models.
_INTEL6 = {
    0x3F: "Haswell-EP", 0x4F: "Broadwell-EP", 0x56: "Broadwell-DE", 0x4E: "Skylake",
    0x5E: "Skylake", 0x8E: "Kaby Lake", 0x9E: "Coffee Lake", 0x55: "Skylake-SP",
    0x6A: "Ice Lake-SP", 0x6C: "Ice Lake-D", 0x7E: "Ice Lake", 0x8C: "Tiger Lake",
    0x8D: "Tiger Lake", 0x97: "Alder Lake", 0x9A: "Alder Lake", 0xB7: "Raptor Lake",
    0xBA: "Raptor Lake", 0xBF: "Raptor Lake", 0xAA: "Meteor Lake", 0xBD: "Lunar Lake",
    0xC5: "Arrow Lake", 0xC6: "Arrow Lake", 0x8F: "Sapphire Rapids", 0xCF: "Emerald Rapids",
    0xAD: "Granite Rapids", 0xAE: "Granite Rapids", 0xAF: "Sierra Forest",
}

# Arm MIDR (implementer, part).
_ARM = {
    (0x41, 0xD03): "Cortex-A53", (0x41, 0xD04): "Cortex-A35", (0x41, 0xD05): "Cortex-A55",
    (0x41, 0xD07): "Cortex-A57", (0x41, 0xD08): "Cortex-A72", (0x41, 0xD09): "Cortex-A73",
    (0x41, 0xD0A): "Cortex-A75", (0x41, 0xD0B): "Cortex-A76", (0x41, 0xD0C): "Neoverse-N1",
    (0x41, 0xD0D): "Cortex-A77", (0x41, 0xD40): "Neoverse-V1", (0x41, 0xD41): "Cortex-A78",
    (0x41, 0xD44): "Cortex-X1", (0x41, 0xD46): "Cortex-A510", (0x41, 0xD47): "Cortex-A710",
    (0x41, 0xD48): "Cortex-X2", (0x41, 0xD49): "Neoverse-N2", (0x41, 0xD4D): "Cortex-A715",
    (0x41, 0xD4E): "Cortex-X3", (0x41, 0xD4F): "Neoverse-V2", (0x46, 0x001): "A64FX",
    (0xC0, 0xAC3): "Ampere-1", (0x61, 0x022): "Apple M1", (0x61, 0x023): "Apple M1",
}


def microarchitecture(vendor: str, family: int | None, model: int | None,
                      stepping: int | None = None) -> str:
    """The core generation for a vendor and CPUID family/model (Arm: implementer/part)."""
    if family is None or model is None:
        return "unknown"
    if vendor == "AuthenticAMD":
        for low, high, name in _AMD.get(family, ()):
            if low <= model <= high:
                return name
    elif vendor == "GenuineIntel" and family == 6:
        name = _INTEL6.get(model, "unknown")
        if model == 0x55 and stepping is not None:  # one model number, three generations
            name = "Cooper Lake" if stepping >= 10 else "Cascade Lake" if stepping >= 5 else name
        return name
    elif vendor == "ARM":
        return _ARM.get((family, model), "unknown")
    return "unknown"
