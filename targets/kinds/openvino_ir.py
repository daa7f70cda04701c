"""OpenVINO targets: an IR (``model.xml``/``.bin``) run by OpenVINO on a CPU or an Intel GPU."""

from __future__ import annotations

from pathlib import Path

from frugalml.runtime.formats import ir_weights
from frugalml.targets.profiles import Target
from frugalml.targets.support import Probes, Support, cpu_support

# OpenVINO keeps compiled CPU models in a per-user cache, so a device compiles once and later
# loads import it (see the openvino backend's CACHE_DIR handling).
OV_CACHE_HINT = "~/.cache/frugalml/openvino"


class OpenVinoIrKind:
    """An IR converted from the ONNX file: FP16 weights and an f16 hint for GPUs, the
    compiled-model cache for CPUs."""

    name = "openvino-ir"
    backend = "openvino"

    def build(self, onnx_file: Path, target: Target, precision: str, work: Path
              ) -> tuple[dict[str, Path], dict[str, str]]:
        """``ov.convert_model`` then ``ov.save_model`` (FP16 weights only for fp16)."""
        import openvino as ov

        xml = work / "model.xml"
        ov.save_model(ov.convert_model(str(onnx_file)), str(xml),
                      compress_to_fp16=precision == "fp16")
        hints = ({"INFERENCE_PRECISION_HINT": "f16"} if target.device == "GPU"
                 else {"CACHE_DIR": OV_CACHE_HINT})
        return {"model.xml": xml, "model.bin": ir_weights(xml)}, hints

    def runs(self, target: Target, missing: tuple[str, ...], probes: Probes) -> Support:
        """As any CPU artifact; a GPU target is native only with its GPU and OpenCL."""
        return cpu_support(target, missing, probes)

    def carries(self, output_format: str) -> bool:
        """ONNX candidates (converted here) and OpenVINO IR candidates."""
        return output_format in ("onnx", "openvino")
