"""Turn exporter exceptions into a diagnosis: which operator or module failed, where, what to do.

Exporters bury the useful line deep inside multi-page messages; this module pulls out the
operator, the source location and the kind of failure, so one ``ExportError`` can list every
exporter tried with a short reason each.
"""

from __future__ import annotations

import dataclasses
import re

# Patterns seen in torch 2.13's dynamo and TorchScript exporters and in Optimum.
_OPERATOR_PATTERNS = (
    re.compile(r"No ONNX function found for <OpOverload\(op='([^']+)'"),
    re.compile(r"target=torch\.ops\.([\w.]+?)(?:\.default)?\]"),
    re.compile(r"unrecognized namespace ([\w.]+::\w+)"),
    re.compile(r"Exporting the operator '?([\w:.]+)'? to ONNX opset version \d+ is not supported"),
    re.compile(r"Unsupported: ONNX export of operator ([\w:.]+)"),
)
_LOCATION = re.compile(r'File "([^"]+)", line (\d+), in (\w+)\n\s+(.+)')
_KINDS = (
    ("GuardOnDataDependentSymNode", "data-dependent control flow",
     "the model branches on tensor values; rewrite the branch with torch.where or torch.cond"),
    ("No ONNX function found", "unsupported operator",
     "replace the operator with supported ones, or register an ONNX translation for it "
     "(torch.onnx.export(..., custom_translation_table=...))"),
    ("unrecognized namespace", "unsupported operator",
     "replace the operator with supported ones, or register an ONNX translation for it"),
    ("is not supported", "unsupported operator",
     "replace the operator, or try a newer opset (--opset)"),
)


@dataclasses.dataclass(frozen=True, slots=True)
class ExporterFailure:
    """Why one exporter failed, reduced to what a user can act on."""

    exporter: str
    error_type: str
    kind: str
    operator: str
    location: str
    advice: str
    detail: str

    def line(self) -> str:
        """One readable line for an error message."""
        parts = [f"{self.exporter}: {self.kind}"]
        if self.operator:
            parts.append(f"operator {self.operator}")
        if self.location:
            parts.append(f"at {self.location}")
        text = ", ".join(parts)
        return f"{text} ({self.error_type}: {self.detail})" + (
            f"; {self.advice}" if self.advice else "")


def diagnose(exporter: str, error: BaseException) -> ExporterFailure:
    """Summarise ``error`` raised by ``exporter``, following its chain of causes."""
    chain = []
    current: BaseException | None = error
    while current is not None and len(chain) < 8:
        chain.append(current)
        current = current.__cause__ or current.__context__
    text = "\n".join(f"{type(e).__name__}: {e}" for e in chain)
    kind, advice = "exporter error", ""
    for marker, found_kind, found_advice in _KINDS:
        if marker in text:
            kind, advice = found_kind, found_advice
            break
    return ExporterFailure(
        exporter=exporter, error_type=type(chain[-1]).__name__, kind=kind,
        operator=_first_match(_OPERATOR_PATTERNS, text), location=_user_location(text),
        advice=advice, detail=_summary(chain[-1]),
    )


def _first_match(patterns: tuple[re.Pattern[str], ...], text: str) -> str:
    for pattern in patterns:
        found = pattern.search(text)
        if found:
            return found.group(1)
    return ""


def _user_location(text: str) -> str:
    """The last source line outside torch/onnx internals that the error names."""
    for path, line, func, code in reversed(_LOCATION.findall(text)):
        if "site-packages" not in path and "/torch/" not in path:
            return f"{path}:{line} in {func}: {code.strip()}"
    return ""


def _summary(error: BaseException) -> str:
    first = next((ln.strip() for ln in str(error).splitlines() if ln.strip()), "")
    first = re.sub(r"\x1b\[[0-9;]*m", "", first)
    return first[:240]
