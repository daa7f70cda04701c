"""Phone artifacts: ONNX Runtime Mobile's ``.ort`` format plus the operator list for a
reduced-size runtime build, made with ONNX Runtime's own converter.

The ``.ort`` file is what an Android or iOS app loads with the mobile package; the
``required_operators_and_types.config`` is the input of ONNX Runtime's reduced-operator build
(``build.sh --include_ops_by_config``), which shrinks the runtime to the kernels this model
uses. Graph optimisations are applied before saving ("fixed" style), with int8 QDQ kept for
ARM (``session.qdqisint8allowed``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from frugalml.errors import TargetError, one_line, require

ORT_NAME = "model.ort"
CONFIG_NAME = "required_operators_and_types.config"


@dataclasses.dataclass(frozen=True, slots=True)
class MobileArtifact:
    """The ``.ort`` model and its reduced-build operator config, side by side."""

    ort_file: Path
    operators_config: Path

    def operators(self) -> dict[str, tuple[str, ...]]:
        """Operator types the model needs, by domain (lines ``domain;opset;Op{types},...``)."""
        ops: dict[str, set[str]] = {}
        for line in self.operators_config.read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                domain, _opset, entries = line.split(";", 2)
                ops.setdefault(domain, set()).update(_op_names(entries))
        return {domain: tuple(sorted(names)) for domain, names in ops.items()}


def _op_names(entries: str) -> list[str]:
    """Names in ``Op1{json},Op2,Op3{json}`` (commas inside the JSON braces do not split)."""
    names, depth, current = [], 0, ""
    for ch in entries + ",":
        depth += (ch == "{") - (ch == "}")
        if ch == "," and depth == 0:
            names.append(current.split("{")[0].strip())
            current = ""
        else:
            current += ch
    return [n for n in names if n]


@contextlib.contextmanager
def _quiet(prefix: str) -> Iterator[None]:
    """Raise the level of the converter's loggers (it logs every file at INFO) for a block."""
    loggers = [logging.getLogger(n) for n in list(logging.root.manager.loggerDict)
               if n.startswith(prefix)] + [logging.getLogger(f"{prefix}.utils")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def to_ort(onnx_file: Path, out_dir: Path) -> MobileArtifact:
    """Convert ``onnx_file`` to ``out_dir/model.ort`` plus its operator config.

    Raises:
        TargetError: the converter failed (the message carries its reason).
    """
    require("onnxruntime", extra="runtime")
    from onnxruntime.tools.convert_onnx_models_to_ort import (
        OptimizationStyle,
        convert_onnx_models_to_ort,
    )

    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="frugal-ort-") as work:
        source = Path(work) / "model.onnx"
        shutil.copyfile(onnx_file, source)
        try:
            with contextlib.redirect_stdout(io.StringIO()), _quiet("ort_format_model"):
                convert_onnx_models_to_ort(source, output_dir=Path(work) / "out",
                                           optimization_styles=[OptimizationStyle.Fixed],
                                           target_platform="arm", enable_type_reduction=True)
        except Exception as e:  # the converter raises RuntimeError / Fail / OSError
            raise TargetError(f"ONNX Runtime could not convert {onnx_file} to the mobile "
                              f"format: {one_line(e)}. Check that every operator is in the "
                              "default ONNX domain or com.microsoft.") from e
        produced = Path(work) / "out"
        ort_file = next(produced.glob("*.ort"))
        config = next(produced.glob("*.config"))
        shutil.move(ort_file, out_dir / ORT_NAME)
        shutil.move(config, out_dir / CONFIG_NAME)
    return MobileArtifact(out_dir / ORT_NAME, out_dir / CONFIG_NAME)
