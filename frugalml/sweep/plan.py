"""Content-hash keys for every stage of every cell, and the cell records on disk.

A stage's key hashes everything its output depends on (the model's bytes, the calibration
set's fingerprint, the recipe, the target, the backend, the versions of frugalml and of the
libraries that build it: deploy's own key functions), so a re-run finds
what is already built and a changed input rebuilds exactly what it affects. A cell's record,
``cells/<key>.json``, is written atomically when the cell ends; a cell with a measured record
is not run again.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path
from typing import Any

from frugalml.calibration.descriptor import open_descriptor
from frugalml.core.records import digest, file_sha256, tree_digest, write_json_atomic
from frugalml.deploy.candidates import EXPORTED
from frugalml.deploy.plan import export_task
from frugalml.deploy.stages import export_key as deploy_export_key
from frugalml.deploy.stages import feeds_digest
from frugalml.deploy.stages import quantize_key as deploy_quantize_key
from frugalml.deploy.timing import native_here
from frugalml.sweep.spec import Cell, SweepSpec
from frugalml.targets import detect, get_target

MEASURED = "measured"
_VALIDATION_ITEMS = 4
# A settled outcome too: deploy would not try the cell's candidate for its model and target.
NOT_APPLICABLE = "not applicable"


@dataclasses.dataclass(frozen=True, slots=True)
class CellPlan:
    """A cell and the keys of its stages (export, quantize and compile are shared by cells
    that agree on their inputs)."""

    cell: Cell
    export_key: str
    quantize_key: str
    compile_key: str
    key: str


@functools.cache
def _model_digest(path: Path) -> str:
    return tree_digest(path) if path.is_dir() else file_sha256(path)


@functools.cache
def data_fingerprint(path: Path) -> str:
    """The calibration set's fingerprint, re-checked against its data (read_descriptor)."""
    return str(open_descriptor(path).fingerprint)


@functools.cache
def validation_feeds(data: str) -> dict[str, Any]:
    """The data's first evaluation items: what the export and the fused graph are checked on
    (read once per process; callers must not change them)."""
    return next(open_descriptor(Path(data)).batches("evaluation",
                                                    batch_size=_VALIDATION_ITEMS))[0]


def plan_cells(spec: SweepSpec) -> list[CellPlan]:
    """Key every cell of ``spec``.

    Raises:
        CalibrationError: a model's data is not a calibration descriptor, or its data changed.
    """
    plans = []
    for cell in spec.cells():
        data = data_fingerprint(cell.model.data)
        validation = feeds_digest([validation_feeds(str(cell.model.data))])
        export_key, quantize_key = _stage_keys(cell, data, validation, spec.eval_items)
        compile_key = digest("sweep-compile", quantize_key, cell.backend, spec.samples)
        key = digest("sweep-cell", compile_key, cell.threads, dict(spec.bench))
        plans.append(CellPlan(cell, export_key, quantize_key, compile_key, key))
    return plans


def _stage_keys(cell: Cell, data: str, validation: str, eval_items: int) -> tuple[str, str]:
    """The export and quantize keys deploy would compute for the same inputs (its functions:
    they name the libraries that build an entry, so an upgrade rebuilds it in both faces):
    ``data`` is the set's fingerprint, ``validation`` the digest of the export's inputs.
    The export's key stands for the export's digest, which a plan made before exporting
    cannot know (and for the fused graph's, the key marked as fused); scoring is native or
    unfused as the target runs here or not."""
    target = detect() if cell.target == "auto" else get_target(cell.target)
    candidate = cell.candidate.spec
    export = deploy_export_key(_model_digest(cell.model.model), validation,
                               export_task(cell.model.model))
    graph = export if candidate.graph == EXPORTED else digest(candidate.graph, export)
    scoring = "native" if native_here(target) else "unfused"
    return export, deploy_quantize_key(
        digest(graph, export), candidate.recipe_for({}).digest, candidate.backend,
        candidate.output_format, target.int8_format.value, scoring, data, eval_items, None)


class CellStore:
    """``out/cells/<key>.json`` per finished cell, and ``out/artifacts`` for the stages."""

    def __init__(self, out: Path) -> None:
        self.out = Path(out).resolve()
        self.cells = self.out / "cells"
        self.artifacts = self.out / "artifacts"
        self.cells.mkdir(parents=True, exist_ok=True)
        self.artifacts.mkdir(parents=True, exist_ok=True)

    def read(self, key: str) -> dict[str, Any] | None:
        """The cell's record, or None if missing or unreadable (a crash mid-write)."""
        try:
            record: dict[str, Any] = json.loads((self.cells / f"{key}.json").read_text())
        except (OSError, ValueError):
            return None
        return record

    def is_measured(self, key: str) -> bool:
        """Done for good: measured on its target, or its candidate does not apply there
        (failed or unmeasured cells run again)."""
        record = self.read(key)
        return record is not None and record.get("status") in (MEASURED, NOT_APPLICABLE)

    def write(self, key: str, record: dict[str, Any]) -> None:
        """Write the record atomically."""
        write_json_atomic(self.cells / f"{key}.json", record)
