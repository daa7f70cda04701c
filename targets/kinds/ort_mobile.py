"""Phones: ONNX Runtime Mobile's ORT format plus the operator config of a reduced build."""

from __future__ import annotations

from pathlib import Path

from frugalml.targets.mobile import CONFIG_NAME, ORT_NAME, to_ort
from frugalml.targets.profiles import Target
from frugalml.targets.support import Probes, Runs, Support


class OrtMobileKind:
    """``model.ort`` + ``required_operators_and_types.config``; the ``.ort`` file loads in the
    desktop runtime, so it is checked there when no phone is at hand."""

    name = "ort"
    backend = "onnxruntime"

    def build(self, onnx_file: Path, target: Target, precision: str, work: Path
              ) -> tuple[dict[str, Path], dict[str, str]]:
        """Convert with ONNX Runtime's tool (``targets.mobile``)."""
        mobile = to_ort(onnx_file, work)
        return {ORT_NAME: mobile.ort_file, CONFIG_NAME: mobile.operators_config}, {}

    def runs(self, target: Target, missing: tuple[str, ...], probes: Probes) -> Support:
        """Native on the device; elsewhere the artifact is checked in desktop ONNX Runtime."""
        return Support(Runs.NATIVE, ()) if not missing else Support(Runs.DESKTOP_CHECK,
                                                                    missing)

    def carries(self, output_format: str) -> bool:
        """ONNX candidates only (an OpenVINO IR cannot become an .ort file)."""
        return output_format == "onnx"
