"""What a CPU's flags prove it computes natively: INT8 dot products, bf16 and fp16 arithmetic.

The microarchitecture table cannot name every CPU (a hypervisor may mask the model number: an
AMX Xeon here reports ``family 6 model 167``, a client part's number), but the flags can
always say what the kernels will find. Candidates and bundles are decided by these
capabilities, never by a model-number table; the microarchitecture only labels measurements.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

# x86 /proc/cpuinfo flags that change which artifact is fastest, best first, with the name a
# user reads. AMX tiles (Sapphire Rapids+) multiply int8/bf16/fp16 matrices; AVX512-BF16 and
# AVX512-FP16 compute those types in vector registers; VNNI is the int8 dot product.
_X86 = (("amx_int8", "AMX-INT8"), ("amx_bf16", "AMX-BF16"), ("amx_fp16", "AMX-FP16"),
        ("avx512_bf16", "AVX512-BF16"), ("avx512_fp16", "AVX512-FP16"),
        ("avx512_vnni", "AVX512-VNNI"), ("avx_vnni", "AVX-VNNI"), ("avx2", "AVX2"))
# Arm `Features`: asimdhp/fphp (fp16 arithmetic, v8.2), bf16 and i8mm (v8.6), asimddp
# (sdot/udot, v8.2; some tools call it asimddot).
_ARM = (("i8mm", "I8MM"), ("bf16", "BF16"), ("asimdhp", "FP16"), ("asimddp", "DOTPROD"),
        ("asimddot", "DOTPROD"), ("asimd", "NEON"))

_X86_BF16 = frozenset({"avx512_bf16", "amx_bf16"})
_X86_FP16 = frozenset({"avx512_fp16", "amx_fp16"})
_X86_INT8_DOT = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})
_ARM_INT8_DOT = frozenset({"asimddp", "asimddot", "i8mm"})

# Vendor strings from /proc/cpuinfo (x86 vendor_id) or the Arm MIDR implementer code.
_VENDORS = {"GenuineIntel": "Intel", "AuthenticAMD": "AMD", "HygonGenuine": "Hygon",
            "ARM": "Arm"}
_ARM_IMPLEMENTERS = {0x41: "Arm", 0x61: "Apple", 0xC0: "Ampere", 0x46: "Fujitsu",
                     0x51: "Qualcomm", 0x48: "HiSilicon"}

FP32, BF16, FP16 = "fp32", "bf16", "fp16"
# OpenVINO's INFERENCE_PRECISION_HINT values <-> the precision names of recipes and manifests.
HINT_OF_PRECISION = {FP32: "f32", BF16: "bf16", FP16: "f16"}
PRECISION_OF_HINT = {hint: name for name, hint in HINT_OF_PRECISION.items()}


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Capabilities:
    """The kernel-relevant features of one CPU, read from its flags (nothing assumed)."""

    machine: str
    features: tuple[str, ...]     # the flags of _X86/_ARM this CPU has, in that order
    int8_dot: bool                # INT8 dot product without saturation (VNNI, AMX, sdot)
    amx: bool                     # AMX tiles for int8 (ONNX Runtime's U8S8 GEMMs use them)
    bf16: bool                    # native bf16 arithmetic (AVX512-BF16, AMX-BF16, Arm BF16)
    fp16: bool                    # native fp16 arithmetic (AVX512-FP16, AMX-FP16, asimdhp)

    @classmethod
    def from_flags(cls, machine: str, flags: Iterable[str]) -> Capabilities:
        """Capabilities of a CPU of architecture ``machine`` with these /proc/cpuinfo flags."""
        have = set(flags)
        table = _ARM if machine == "aarch64" else _X86
        features = tuple(dict.fromkeys(f for f, _ in table if f in have))
        if machine == "aarch64":
            return cls(machine=machine, features=features, amx=False,
                       int8_dot=bool(_ARM_INT8_DOT & have), bf16="bf16" in have,
                       fp16="asimdhp" in have)
        return cls(machine=machine, features=features, amx="amx_int8" in have,
                   int8_dot=bool(_X86_INT8_DOT & have), bf16=bool(_X86_BF16 & have),
                   fp16=bool(_X86_FP16 & have))

    def to_dict(self) -> dict[str, object]:
        """Plain-JSON form (with the precisions it computes natively)."""
        return {"machine": self.machine, "features": list(self.features),
                "int8_dot": self.int8_dot, "amx": self.amx, "bf16": self.bf16,
                "fp16": self.fp16, "precisions": list(self.precisions)}

    @property
    def precisions(self) -> tuple[str, ...]:
        """Float precisions this CPU computes natively: fp32 always, then bf16 and fp16."""
        return (FP32, *((BF16,) if self.bf16 else ()), *((FP16,) if self.fp16 else ()))

    def computes(self, precision: str) -> bool:
        """True when ``precision`` (fp32, bf16, fp16 or an integer one) runs natively here;
        integer and mixed precisions need nothing beyond the target's own features."""
        return precision not in (BF16, FP16) or precision in self.precisions

    def describe(self, vendor: str = "unknown", implementer: int | None = None) -> str:
        """What the flags prove, e.g. ``Intel, AMX-INT8 + AMX-BF16 + AVX512-BF16``."""
        table = dict(_ARM if self.machine == "aarch64" else _X86)
        names = list(dict.fromkeys(table[f] for f in self.features))
        who = _ARM_IMPLEMENTERS.get(implementer or -1, "Arm") if vendor == "ARM" else (
            _VENDORS.get(vendor, vendor))
        listed = " + ".join(names) if names else "no INT8/bf16/fp16 extensions"
        return f"{who}, {listed}" if who and who != "unknown" else listed

    def missing_for(self, precision: str) -> str:
        """Why ``precision`` does not run natively here ('' when it does)."""
        if self.computes(precision):
            return ""
        wanted = (" or ".join(sorted(_X86_BF16 if precision == BF16 else _X86_FP16))
                  if self.machine != "aarch64" else
                  ("bf16" if precision == BF16 else "asimdhp"))
        return (f"this CPU has no native {precision} arithmetic (its flags lack {wanted}); "
                f"OpenVINO would emulate or ignore it")
