"""The candidate artifacts a deploy tries: each a named recipe x quantization backend x format.

Which apply depends on the model's family (:mod:`frugalml.deploy.families`: each family names
the candidates that suit it) and the target: the engine builds every one that applies, scores
it against FP32 on the evaluation split, and lets the measurement pick. Nothing here knows a
backend's API; the recipe and the backend name go to :func:`frugalml.quantize.api.quantize`,
which translates them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from frugalml.deploy.families import (  # noqa: F401 - the family names, re-exported
    CNN,
    DECODER,
    OTHER,
    STREAMING,
    TRANSFORMER,
    get_family,
)
from frugalml.errors import QuantizationError
from frugalml.quantize.recipe import get_recipe
from frugalml.targets.kinds import get_kind

FP32 = "fp32"
# The FP32 graph a candidate starts from: the export, or the export with ORT fusions.
EXPORTED, FUSED = "exported", "fused"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CandidateSpec:
    """One way to build an artifact from the FP32 export."""

    name: str
    recipe: str
    backend: str
    output_format: str
    default: bool                       # tried without --candidates all
    devices: frozenset[str] = frozenset({"CPU"})
    about: str = ""
    graph: str = EXPORTED              # which FP32 graph it starts from: EXPORTED or FUSED
    sources: frozenset[str] = frozenset({"onnx", "gguf"})  # the formats the model came in
    budget_defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # recipe fields
    # Capabilities (see CAPABILITIES) every CPU of the target must have for the candidate to
    # apply at all, and those it must have for the candidate to be tried by default.
    needs: frozenset[str] = frozenset()
    default_needs: frozenset[str] = frozenset()

    def recipe_for(self, budget: Mapping[str, Any]) -> Any:
        """The recipe with the user's budget limits over the candidate's and recipe's own."""
        recipe = get_recipe(self.recipe, **self.options)
        limits = {**self.budget_defaults, **budget}  # budget: the family's, then the user's
        if not limits:
            return recipe
        return dataclasses.replace(recipe, budget=dataclasses.replace(recipe.budget, **limits))

    def to_dict(self) -> dict[str, Any]:
        """What deploy.json says of the candidate's construction."""
        return {"name": self.name, "recipe": self.recipe, "backend": self.backend,
                "format": self.output_format, **({"options": dict(self.options)}
                                                 if self.options else {})}


# What a target's required CPU features prove (runtime.capabilities.Capabilities fields).
CAPABILITIES = ("int8_dot", "amx", "bf16", "fp16")

CANDIDATES: dict[str, CandidateSpec] = {c.name: c for c in (
    CandidateSpec(name="fp32-fused", recipe="fp32", backend="onnxruntime",
                  output_format="onnx", default=True, graph=FUSED,
                  budget_defaults={"max_size_ratio": 1.01, "min_mean_cosine": 0.9999,
                                   "max_accuracy_drop_points": 0.5,
                                   "max_perplexity_increase_pct": 0.5},
                  about="FP32 with attention, skip layer norm and GELU fused for ONNX Runtime "
                        "(onnxscript ort_fusions), kept only if outputs match"),
    CandidateSpec(name="int8-static", recipe="int8", backend="onnxruntime", output_format="onnx",
                  default=True,
                  about="ONNX Runtime static QDQ, per-channel weights, the target's format"),
    CandidateSpec(name="int8-dynamic", recipe="int8-dynamic", backend="onnxruntime",
                  output_format="onnx", default=True,
                  about="ONNX Runtime dynamic INT8: per-channel weights, activations per call"),
    CandidateSpec(name="int8-dynamic-fused", recipe="int8-dynamic", backend="onnxruntime",
                  output_format="onnx", default=True, graph=FUSED,
                  about="ONNX Runtime dynamic INT8 on the fused graph: attention as QAttention, "
                        "per-channel weights"),
    CandidateSpec(name="int8-nncf", recipe="int8", backend="nncf", output_format="onnx",
                  default=False, about="NNCF post-training INT8, run by ONNX Runtime"),
    # NOTE: default where it was measured to beat ONNX Runtime's INT8: on an AMX Xeon it ran
    # EfficientNet-Lite0 at 2.30x ORT FP32 (ORT static INT8 1.80x) and MiniLM at 3.07x; on
    # AVX2 without VNNI 1.43x, no better than ORT's, at a worse agreement (STACK.md). On
    # VNNI-only and ARM CPUs it is unmeasured, so there it waits for --candidates all.
    CandidateSpec(name="int8-openvino", recipe="int8", backend="nncf",
                  output_format="openvino", default=True,
                  default_needs=frozenset({"amx"}),
                  about="NNCF INT8 as an OpenVINO IR, run by OpenVINO"),
    # NOTE: not a default: measured on an AMX Xeon (MiniLM, 1 thread) against int8-openvino
    # with its float ops at f32, 0.95x at batch 1 and 1.03-1.08x at 8 x 128, at a cosine of
    # 0.9986 to it; it is there for models whose float part dominates.
    CandidateSpec(name="int8-bf16-openvino", recipe="int8", backend="nncf",
                  output_format="openvino", default=False, needs=frozenset({"bf16"}),
                  options={"float_precision": "bf16"},
                  about="NNCF INT8 as an OpenVINO IR, its float ops computed in bf16 "
                        "(AMX / AVX512-BF16)"),
    CandidateSpec(name="fp32-openvino", recipe="fp32", backend="nncf", output_format="openvino",
                  default=False,
                  budget_defaults={"max_size_ratio": 1.5},  # the same weights (see _bf16)
                  about="the FP32 export as an OpenVINO IR, run by OpenVINO at f32"),
    # NOTE: measured on an AMX Xeon, 1 thread, against ORT FP32: EfficientNet-Lite0 2.27x at
    # cosine 0.99984, MiniLM 8 x 128 4.30x at 0.99997 (STACK.md). Only where the target
    # guarantees native bf16: elsewhere OpenVINO ignores or emulates the hint.
    CandidateSpec(name="bf16-openvino", recipe="bf16", backend="nncf", output_format="openvino",
                  default=True, needs=frozenset({"bf16"}),
                  about="the FP32 export as an OpenVINO IR computed in bf16 (AMX / AVX512-BF16)"),
    # A GGUF's own blocks first: nothing to search, the file's accuracy, built in under a
    # minute for SmolLM2; under --time-budget 5m it was skipped after AWQ (the slowest to
    # build) had used the time.
    CandidateSpec(name="w4a8-gguf", recipe="w4a8", backend="gguf", output_format="onnx",
                  default=True, sources=frozenset({"gguf"}),
                  budget_defaults={"max_size_ratio": 0.3},
                  about="the GGUF file's own blocks (Q4_0/1, Q5_0/1, Q8_0, Q4_K, Q5_K, Q6_K), "
                        "not re-rounded (MatMulNBits, GatherBlockQuantized)"),
    CandidateSpec(name="w4a8", recipe="w4a8", backend="onnxruntime", output_format="onnx",
                  default=True, about="4-bit grouped weights (MatMulNBits, accuracy level 4)"),
    CandidateSpec(name="w4a8-awq", recipe="w4a8", backend="nncf", output_format="onnx",
                  default=True, options={"weight_methods": ("awq", "scale_estimation")},
                  about="4-bit grouped weights chosen by NNCF's AWQ and scale estimation on "
                        "calibration text (MatMulNBits, accuracy level 4)"),
    CandidateSpec(name="w4a8-openvino", recipe="w4a8", backend="nncf",
                  output_format="openvino", default=False,
                  about="NNCF 4-bit grouped weights as an OpenVINO IR, dynamic int8 "
                        "activations where the CPU has int8 kernels for them"),
    CandidateSpec(name="fp16", recipe="fp16", backend="onnxruntime", output_format="onnx",
                  default=True, devices=frozenset({"GPU"}),
                  about="FP16 weights for targets that compute in FP16"),
    # NOTE: not timed on this x86 host (no x86 target computes fp16 here: OpenVINO's f16 hint
    # on an AVX512-FP16 Xeon ran MiniLM 1.4x slower than f32, ONNX Runtime has no x86 fp16
    # kernels); checked under QEMU on an emulated Neoverse N1 against the fp32 reference.
    CandidateSpec(name="fp16-cpu", recipe="fp16", backend="onnxruntime", output_format="onnx",
                  default=True, needs=frozenset({"fp16"}),
                  about="FP16 weights and arithmetic for CPUs with native fp16 (Arm v8.2 "
                        "asimdhp), run by ONNX Runtime's fp16 kernels"),
)}


def parse_choice(choice: str) -> tuple[str, ...]:
    """``default``, ``all`` or names, checked before any work starts.

    Raises:
        QuantizationError: an unknown candidate name (the message lists them).
    """
    if choice in ("default", "all"):
        return (choice,)
    names = tuple(dict.fromkeys(n.strip() for n in choice.split(",") if n.strip()))
    unknown = [n for n in names if n not in CANDIDATES and n != FP32]
    if unknown or not names:
        raise QuantizationError(
            f"Unknown candidate{'s' if len(unknown) > 1 else ''} {', '.join(unknown) or '(none)'}"
            f"; choose default, all, or names among {FP32}, {', '.join(CANDIDATES)}.")
    return names


def candidates_for(family: str, target: Any, choice: Sequence[str], *,
                   source_format: str = "onnx") -> list[CandidateSpec]:
    """The candidates that apply to ``family`` on ``target``, in the order they are tried.

    Named candidates that do not apply are left out (the engine says so); ``default`` keeps
    the cheap, usually useful ones and ``all`` every one that applies. A model that came as
    OpenVINO IR has no ONNX form: only NNCF's IR-to-IR INT8 applies, by default.
    """
    pool: Sequence[CandidateSpec] = list(CANDIDATES.values())
    suits = get_family(family).suits
    if source_format == "openvino":  # whatever the family, whatever the CPU: the only one
        pool = [dataclasses.replace(CANDIDATES["int8-openvino"], default=True,
                                    default_needs=frozenset())]
        suits = CANDIDATES.__contains__

    have, kind = target_capabilities(target), get_kind(target.artifact)
    applies = [c for c in pool
               if suits(c.name) and target.device in c.devices
               and (source_format == "openvino" or source_format in c.sources)
               and kind.carries(c.output_format) and c.needs <= have]
    if choice == ("all",):
        return applies
    if choice == ("default",):
        return [c for c in applies if c.default and c.default_needs <= have]
    return [c for c in applies if c.name in choice]


def target_capabilities(target: Any) -> frozenset[str]:
    """The CAPABILITIES every CPU of ``target`` has (from the features it requires)."""
    caps = target.capabilities
    return frozenset(name for name in CAPABILITIES if getattr(caps, name))


# What each capability means in CPU features, for the reason a candidate is not offered.
_NEEDS_TEXT = {"bf16": "native bf16 (avx512_bf16 or amx_bf16; Arm bf16)",
               "fp16": "native fp16 (avx512_fp16; Arm asimdhp)",
               "amx": "AMX tiles (amx_int8)",
               "int8_dot": "an INT8 dot product (avx512_vnni, avx_vnni, amx_int8; Arm asimddp)"}


def not_offered(target: Any) -> dict[str, str]:
    """Candidates ``target`` never gets, each with the capability its CPUs lack (for
    `frugal targets`): e.g. bf16-openvino on x86-avx2, whose CPUs have no native bf16."""
    have = target_capabilities(target)
    return {c.name: "needs " + "; ".join(_NEEDS_TEXT[n] for n in sorted(c.needs - have))
            for c in CANDIDATES.values() if not c.needs <= have}


def not_applicable(family: str, target: Any, choice: Sequence[str], *,
                   source_format: str = "onnx") -> list[str]:
    """Names the user asked for that do not apply here, for the progress line."""
    if choice in (("all",), ("default",)):
        return []
    kept = {c.name for c in candidates_for(family, target, choice, source_format=source_format)}
    return [n for n in choice if n not in kept and n != FP32]
