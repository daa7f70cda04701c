"""Mixed precision as a search: a static INT8 candidate that misses its accuracy budget gets
diagnose's ranking of its nodes by sensitivity, then a doubling-and-bisection search for the
fewest nodes kept in float that meet the budget, within the deploy's time budget.

Every point tried (k nodes in float, its checks, in budget or not) goes into deploy.json as
the candidate's ``search`` curve, so "INT8 gains nothing at any point" is shown once, with
its numbers. The chosen point is the one with the fewest float nodes (fewer float nodes, less
to dequantize); it is bundled, verified and timed like any candidate. The other points are
scored, not timed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from frugalml.core.cache import cached_stage
from frugalml.deploy.result import CandidateResult
from frugalml.errors import QuantizationError
from frugalml.quantize import QuantizedModel
from frugalml.quantize.api import read_record
from frugalml.quantize.diagnose import DIAGNOSIS_NAME, diagnose


def searchable(spec: Any, entry: CandidateResult, time_left: float) -> bool:
    """Static INT8 that missed on accuracy, not on size (float nodes only add size), with
    time left for the search."""
    checks = entry.accuracy.checks if entry.accuracy else None
    failed = [c for c in checks or () if not c["passed"]]
    return (spec.recipe == "int8" and bool(failed) and time_left > 0
            and all(c["name"] != "size vs FP32" for c in failed))


def search(run: Any, spec: Any, target: Any, recipe: Any, key: str, start: Any
           ) -> tuple[Any, bool]:
    """The searched model's quantize record (cached by ``key``), from diagnose, which starts
    from ``start``: the candidate's first build, all INT8, already scored (MiniLM's took
    about 15 s to build again).

    Raises:
        QuantizationError: no point met the budget (every ranked node in float, or none
            before the time budget ran out).
    """
    def build(tmp: Path) -> Any:
        diagnose(run.model, run.data, tmp / "quantized", recipe=recipe,
                 backend=spec.backend, target=target, eval_items=run.eval_items,
                 task=run.task, steps=run.steps, deadline=run.deadline, first=start,
                 output_format=spec.output_format)
        return read_record(tmp / "quantized")

    run.steps.note(f"  {spec.name}: mixed-precision search (nodes ranked by sensitivity, the "
                   f"fewest kept in float that meet the budget; "
                   f"{run.build_time_left():.0f} s left)")
    try:
        return cached_stage(run.cache, "quantize", "search" + key, build,
                            QuantizedModel.from_dict, reusable=_searched_whole)
    except QuantizationError as e:
        raise QuantizationError(f"missed its budget, and the mixed-precision search found no "
                                f"point that meets it: {e}") from e


def _searched_whole(record: dict[str, Any]) -> bool:
    """False for a cached search the time budget stopped early: a later run with more time
    searches again rather than keep its point."""
    try:
        diagnosis = json.loads((Path(record["path"]).parent / DIAGNOSIS_NAME).read_text())
    except (OSError, ValueError):
        return False
    return not diagnosis.get("stopped_early")


def curve(record: Any) -> dict[str, Any]:
    """What deploy.json says of the search behind ``record``: every point tried (float nodes,
    in budget or not, each check's value), where it started and whether it stopped early."""
    diagnosis = json.loads((Path(record.path).parent / DIAGNOSIS_NAME).read_text())
    points = [{"float_nodes": t["float_layers"], "within_budget": t["within_budget"],
               "checks": {c["name"]: c["value"] for c in t["checks"]}}
              for t in diagnosis["tries"]]
    return {"points": sorted(points, key=lambda p: p["float_nodes"]),
            "ranked_nodes": len(diagnosis["ranking"]),
            "kept_in_int8": len(diagnosis.get("kept_in_int8", ())),
            "stopped_early": diagnosis.get("stopped_early", ""),
            "first_point": diagnosis.get("first_point", 1),
            "seconds": diagnosis["seconds"]}
