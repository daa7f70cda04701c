"""`frugal deploy --targets T1,T2`: one model to several targets in one command.

Export once; quantize once per INT8 format and scoring mode (targets sharing both share the
model); then compile per target, which verifies each bundle by whatever runs it here and
speed-gates the native ones. A target whose quantized model misses its budget gets its FP32
bundle as the default, with the reason: nothing over budget is shipped as a default.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from frugalml._progress import Steps
from frugalml._records import write_json_atomic
from frugalml.errors import FrugalError, TargetError

SUMMARY_NAME = "targets.json"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TargetOutcome:
    """One target's bundles, how each was verified, its default and why."""

    target: str
    default: str
    bundles: dict[str, str]
    verification: dict[str, dict[str, Any]]
    speed_gate: dict[str, Any] | None
    accuracy: dict[str, Any] | None
    note: str

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return dataclasses.asdict(self)


def deploy_targets(model_dir: Path, data_file: Path, out_dir: Path, targets: Sequence[str], *,
                   recipe: str = "int8", quantizer: str = "onnxruntime",
                   eval_items: int = 500, sample_items: int = 4,
                   quiet: bool = False) -> dict[str, TargetOutcome]:
    """Export ``model_dir`` (a sentence encoder), quantize with ``recipe`` for each target's
    format, compile a bundle per target under ``out_dir/targets/<target>``, and write
    ``out_dir/targets.json``.

    A target whose quantization or compile fails (e.g. its bundle does not reproduce its
    samples where it is checked) records the typed error and the others go on; nothing of
    the failed bundle is left on disk.

    Raises:
        TargetError: no target, or an unknown one (before any work starts).
        FrugalError: the export or the calibration set failed (every target needs them).
    """
    from frugalml.calibration import build_text_set
    from frugalml.export.huggingface import INPUT_NAMES
    from frugalml.pipeline import export_cached
    from frugalml.quantize import get_quantizer
    from frugalml.quantize.recipe import get_recipe
    from frugalml.targets import get_target

    if not targets:
        raise TargetError("No target given: pass --targets T1,T2 (see `frugal targets`).")
    resolved = [get_target(t) for t in dict.fromkeys(targets)]
    chosen = get_recipe(recipe)
    get_quantizer(quantizer)
    steps, out_dir = Steps(quiet=quiet), Path(out_dir).resolve()
    with steps.step("read, split and fingerprint the calibration set"):
        data = build_text_set(data_file, model_dir, input_names=INPUT_NAMES,
                              calibration_size=chosen.calibration_items)
    exported = export_cached(model_dir, out_dir / "cache", [i.text for i in
                                                      data.items("calibration", limit=8)], steps)
    samples = next(data.batches("evaluation", batch_size=sample_items))[0]
    quantized: dict[tuple[str, str], Any] = {}
    outcomes = {}
    for target in resolved:
        steps.note(f"target {target.name}: {target.description}")
        try:
            q = _quantized_for(target, exported.path, data, out_dir, chosen, quantizer,
                               eval_items, quantized, steps)
            outcomes[target.name] = _compile(target, exported.path, q, out_dir, samples,
                                             Path(model_dir).name, steps)
        except FrugalError as e:
            steps.note(f"  {target.name} FAILED: {type(e).__name__}: {e}")
            outcomes[target.name] = TargetOutcome(
                target=target.name, default="", bundles={}, verification={}, speed_gate=None,
                accuracy=None, note=f"failed: {type(e).__name__}: {e}")
    write_json_atomic(out_dir / SUMMARY_NAME,
                      {name: o.to_dict() for name, o in outcomes.items()})
    return outcomes


def _quantized_for(target: Any, fp32: Path, data: Any, out_dir: Path, recipe: Any,
                   quantizer: str, eval_items: int, done: dict[tuple[str, str], Any],
                   steps: Steps) -> Any:
    """The quantized model for ``target``: reused when an earlier target had the same format
    and was scored the same way (natively, or against the unfused reference)."""
    from frugalml.quantize.api import quantize
    from frugalml.runtime.host import read_host
    from frugalml.targets import missing_for

    scoring = "unfused" if missing_for(target, read_host()) else "native"
    key = (target.int8_format.value, scoring)
    if key not in done:
        done[key] = quantize(fp32, data, out_dir / "quantized" / "-".join(key), recipe=recipe,
                             backend=quantizer, target=target, output_format="onnx",
                             eval_items=eval_items, allow_over_budget=True, steps=steps)
    return done[key]


def _compile(target: Any, fp32: Path, quantized: Any, out_dir: Path, samples: Any, name: str,
             steps: Steps) -> TargetOutcome:
    """Compile the quantized and FP32 bundles, or FP32 alone when quantization missed."""
    from frugalml.targets.compile import compile_model

    accuracy = quantized.accuracy
    within = bool(accuracy.get("within_budget"))
    model = quantized.path.parent if within else fp32
    with steps.step(f"compile, verify and gate for {target.name}", spinner=False):
        result = compile_model(model, out_dir / "targets" / target.name, target=target,
                               samples=samples, fp32=fp32 if within else None, name=name,
                               steps=steps)
    if not within:
        failures = "; ".join(f"{c['name']} {c['value']:.4f}, limit {c['limit']}"
                             for c in accuracy.get("checks", ()) if not c["passed"])
        note = f"{quantized.precision} missed its budget ({failures}): FP32 only"
    elif result.speed_gate is None:
        note = (f"{result.default} is the default: not timed here (the target does not run "
                "natively on this host)")
    else:
        note = result.speed_gate["why"]
    return TargetOutcome(target=target.name, default=result.default, bundles=result.bundles,
                         verification=result.verification, speed_gate=result.speed_gate,
                         accuracy=accuracy, note=note)


def summary_lines(outcomes: dict[str, TargetOutcome], out_dir: Path) -> list[str]:
    """One block per target for the terminal."""
    lines = []
    for o in outcomes.values():
        if not o.default:
            lines.append(f"{o.target}: {o.note}")
            continue
        lines.append(f"{o.target}: default {o.default} ({o.bundles[o.default]})")
        for precision, check in o.verification.items():
            how = check.get("how") if check["status"] == "verified" else check.get("why")
            lines.append(f"  {precision}: {check['status']} ({how})")
        lines.append(f"  {o.note}")
    lines.append(f"summary: {Path(out_dir).resolve() / SUMMARY_NAME}")
    return lines

