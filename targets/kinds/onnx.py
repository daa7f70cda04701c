"""CPU targets run by ONNX Runtime: the bundle carries the ONNX file itself."""

from __future__ import annotations

from pathlib import Path

from frugalml.targets.bundle import MODEL_NAME
from frugalml.targets.profiles import Target
from frugalml.targets.support import Probes, Support, cpu_support


class OnnxKind:
    """``model.onnx``: native on its CPU class, under QEMU for arm64 where installed."""

    name = "onnx"
    backend = "onnxruntime"

    def build(self, onnx_file: Path, target: Target, precision: str, work: Path
              ) -> tuple[dict[str, Path], dict[str, str]]:
        """The ONNX file as it is; no hints."""
        return {MODEL_NAME: onnx_file}, {}

    def runs(self, target: Target, missing: tuple[str, ...], probes: Probes) -> Support:
        """Native, emulated (arm64 under QEMU) or not here."""
        return cpu_support(target, missing, probes)

    def carries(self, output_format: str) -> bool:
        """ONNX candidates, and OpenVINO IR ones: the CPUs of an ONNX target run OpenVINO too
        (such a bundle is built for the target with the openvino backend, an IR)."""
        return output_format in ("onnx", "openvino")
