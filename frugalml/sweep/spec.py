"""The sweep spec (YAML or JSON) and the grid of cells it expands to.

A spec names models (each with a calibration set made by ``frugal calibrate``), deploy's
candidates by name (or recipes with their quantizer and fields), backends, targets and runtime
settings; every combination a candidate can run in is a cell. Everything is validated before
any work starts, with the field that is wrong in the message.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from pathlib import Path
from typing import Any

from frugalml.deploy.candidates import CANDIDATES, FP32, FUSED, CandidateSpec
from frugalml.errors import FrugalError, SweepError
from frugalml.quantize import get_quantizer
from frugalml.quantize.recipe import get_recipe
from frugalml.runtime.backends import names as backend_names
from frugalml.targets import detect, get_target

BACKENDS = backend_names()  # the runtime registry's
_TOP_KEYS = {"name", "models", "candidates", "recipes", "backends", "targets", "settings",
             "eval_items", "samples", "bench"}
# speed_cap_s: seconds the speed protocol may take for a quantized cell against its FP32 sibling.
_BENCH_KEYS = {"runs": 100, "warmup": 10, "speed_cap_s": 60}
_BENCH_LOW = {"runs": 2, "warmup": 0, "speed_cap_s": 1}


@dataclasses.dataclass(frozen=True, slots=True)
class ModelEntry:
    """A model to sweep: an ONNX file, a Hugging Face directory or a GGUF, plus its data."""

    name: str
    model: Path
    data: Path  # a `frugal calibrate` descriptor (calibration.json or its folder)


@dataclasses.dataclass(frozen=True, slots=True)
class CandidateEntry:
    """A deploy candidate by name (``fp32``, ``int8-dynamic-fused``, ``w4a8-gguf``, ...), or a
    recipe x quantizer with field overrides given under ``recipes`` (a candidate of its own,
    labelled as the spec says): what the cell builds, in deploy's vocabulary."""

    label: str
    spec: CandidateSpec

    @property
    def is_fp32(self) -> bool:
        """The FP32 export itself: the cell every other cell of its row is timed against."""
        return self.spec.name == FP32

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (what the quantize stage builds)."""
        return {**self.spec.to_dict(), "graph": self.spec.graph, "label": self.label}


@dataclasses.dataclass(frozen=True, slots=True)
class Cell:
    """One point of the grid."""

    model: ModelEntry
    candidate: CandidateEntry
    backend: str
    target: str
    threads: int

    @property
    def label(self) -> str:
        """Short, unique within a sweep: model/candidate/backend/target/threads."""
        return (f"{self.model.name}/{self.candidate.label}/{self.backend}/{self.target}/"
                f"{self.threads}t")


@dataclasses.dataclass(frozen=True, slots=True)
class SweepSpec:
    """A validated spec: the axes of the grid and how each cell is scored and timed."""

    name: str
    models: tuple[ModelEntry, ...]
    candidates: tuple[CandidateEntry, ...]
    backends: tuple[str, ...]
    targets: tuple[str, ...]
    threads: tuple[int, ...]
    eval_items: int = 200
    samples: int = 4
    bench: tuple[tuple[str, int], ...] = tuple(_BENCH_KEYS.items())

    def cells(self) -> list[Cell]:
        """Every combination a candidate's artifact can run in, in spec order (models
        outermost, threads innermost): an IR cell only on OpenVINO, a graph of ONNX Runtime
        contrib operators (fused attention, 4-bit MatMulNBits) only on ONNX Runtime."""
        return [Cell(m, c, b, t, n) for m, c, b, t, n in itertools.product(
            self.models, self.candidates, self.backends, self.targets, self.threads)
            if b in runtimes_of(c.spec)]


def load_spec(path: Path) -> SweepSpec:
    """Read and validate a sweep spec; relative paths are relative to the spec's folder.

    Raises:
        SweepError: unreadable file, unknown field, missing model or data, unknown recipe,
            quantizer, backend or target, or an empty axis.
    """
    path = Path(path)
    raw = _read(path)
    unknown = set(raw) - _TOP_KEYS
    if unknown:
        raise SweepError(f"{path}: unknown field(s) {', '.join(sorted(unknown))}; a spec has "
                         f"{', '.join(sorted(_TOP_KEYS))}.")
    base = path.resolve().parent
    settings = _mapping(raw.get("settings", {}), "settings", path)
    threads = tuple(_int(t, "settings.threads", path, low=0)
                    for t in _list(settings.get("threads", [1]), "settings.threads", path))
    bench = _mapping(raw.get("bench", {}), "bench", path)
    if set(bench) - set(_BENCH_KEYS):
        raise SweepError(f"{path}: bench takes {', '.join(_BENCH_KEYS)}.")
    models = tuple(_model(m, base, path) for m in _list(raw.get("models"), "models", path))
    candidates = _candidates(raw, path)
    for what, names in (("model name", [m.name for m in models]),
                        ("candidate label", [c.label for c in candidates])):
        if len(set(names)) < len(names):
            raise SweepError(f"{path}: each {what} must be unique (cells are named by them); "
                             f"got {names}. Set name (models) or label (recipes); name a "
                             "candidate once.")
    spec = SweepSpec(
        name=str(raw.get("name", path.stem)),
        models=models,
        candidates=candidates,
        backends=tuple(_backend(b, path) for b in _list(raw.get("backends", ["onnxruntime"]),
                                                        "backends", path)),
        targets=tuple(_target(t, path) for t in _list(raw.get("targets", ["auto"]),
                                                      "targets", path)),
        threads=threads,
        eval_items=_int(raw.get("eval_items", 200), "eval_items", path, low=1),
        samples=_int(raw.get("samples", 4), "samples", path, low=1),
        bench=tuple((k, _int(bench.get(k, v), f"bench.{k}", path, low=_BENCH_LOW[k]))
                    for k, v in _BENCH_KEYS.items()),
    )
    if not spec.cells():
        raise SweepError(f"{path}: no candidate runs on the backends {list(spec.backends)}: "
                         "an OpenVINO IR candidate needs backend openvino, a fused or 4-bit "
                         "ONNX graph backend onnxruntime.")
    return spec


def _read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as e:
        raise SweepError(f"Cannot read the sweep spec {path}: {e.strerror}.") from e
    if path.suffix in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise SweepError(f"{path} is not valid YAML: {e}") from e
    else:
        try:
            data = json.loads(text)
        except ValueError as e:
            raise SweepError(f"{path} is not valid JSON (name YAML specs .yaml): {e}") from e
    if not isinstance(data, dict):
        raise SweepError(f"{path} must hold a mapping with models, candidates, backends, ...")
    return data


def _list(value: Any, field: str, path: Path) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise SweepError(f"{path}: {field} must be a non-empty list.")
    return value


def _mapping(value: Any, field: str, path: Path) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SweepError(f"{path}: {field} must be a mapping.")
    return value


def _int(value: Any, field: str, path: Path, *, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise SweepError(f"{path}: {field} must be an integer >= {low}, not {value!r}.")
    return value


def _model(entry: Any, base: Path, path: Path) -> ModelEntry:
    entry = _mapping(entry, "each models entry", path)
    if set(entry) - {"name", "model", "data"} or not {"model", "data"} <= set(entry):
        raise SweepError(f"{path}: a models entry has model (ONNX, HF dir or GGUF), data (a "
                         f"`frugal calibrate` folder) and optionally name; got {sorted(entry)}.")
    model, data = base / str(entry["model"]), base / str(entry["data"])
    for what, p in (("model", model), ("data", data)):
        if not p.exists():
            raise SweepError(f"{path}: {what} {p} does not exist.")
    return ModelEntry(str(entry.get("name", model.stem)), model, data)


# The FP32 export as a cell: what a deploy's "fp32" ships, built through the quantize stage's
# fp32 recipe so it is bundled and timed like the others.
_FP32 = CandidateSpec(name=FP32, recipe="fp32", backend="onnxruntime", output_format="onnx",
                      default=True, about="the FP32 export")


def runtimes_of(candidate: CandidateSpec) -> tuple[str, ...]:
    """The runtimes that can run ``candidate``'s artifact."""
    if candidate.output_format == "openvino":
        return ("openvino",)
    if candidate.graph == FUSED or candidate.recipe.startswith("w4"):
        return ("onnxruntime",)  # com.microsoft operators (MatMulNBits) OpenVINO does not read
    return BACKENDS


def _candidates(raw: dict[str, Any], path: Path) -> tuple[CandidateEntry, ...]:
    """``candidates`` (deploy's names) then ``recipes`` (recipe x quantizer entries); with
    neither, fp32 and int8-static."""
    if "candidates" not in raw and "recipes" not in raw:
        return (CandidateEntry(FP32, _FP32), CandidateEntry("int8-static",
                                                            CANDIDATES["int8-static"]))
    named = tuple(_named(n, path) for n in _list(raw["candidates"], "candidates", path)
                  ) if "candidates" in raw else ()
    recipes = tuple(_recipe(r, path) for r in _list(raw["recipes"], "recipes", path)
                    ) if "recipes" in raw else ()
    return named + recipes


def _named(name: Any, path: Path) -> CandidateEntry:
    if name == FP32:
        return CandidateEntry(FP32, _FP32)
    if name not in CANDIDATES:
        raise SweepError(f"{path}: unknown candidate {name!r}; choose among {FP32}, "
                         f"{', '.join(CANDIDATES)} (or a recipes entry for a recipe of your "
                         "own).")
    return CandidateEntry(str(name), CANDIDATES[str(name)])


def _recipe(entry: Any, path: Path) -> CandidateEntry:
    """A ``recipes`` entry: a recipe name, or {recipe, quantizer, label, recipe fields}."""
    if isinstance(entry, str):
        entry = {"recipe": entry}
    entry = dict(_mapping(entry, "each recipes entry", path))
    name, quantizer = entry.pop("recipe", None), entry.pop("quantizer", "onnxruntime")
    label = str(entry.pop("label", name if quantizer == "onnxruntime" else f"{name}-{quantizer}"))
    try:
        get_recipe(str(name), **entry)
        get_quantizer(str(quantizer))
    except FrugalError as e:
        raise SweepError(f"{path}: recipe {name!r}: {e}") from e
    if name == FP32 and quantizer == "onnxruntime" and not entry:
        return CandidateEntry(label, _FP32)
    return CandidateEntry(label, CandidateSpec(
        name=label, recipe=str(name), backend=str(quantizer), output_format="onnx",
        default=True, options=dict(sorted(entry.items()))))


def _backend(name: Any, path: Path) -> str:
    if name not in BACKENDS:
        raise SweepError(f"{path}: unknown backend {name!r}; use {' or '.join(BACKENDS)}.")
    return str(name)


def _target(name: Any, path: Path) -> str:
    try:
        return detect().name if name == "auto" else get_target(str(name)).name
    except FrugalError as e:
        raise SweepError(f"{path}: {e}") from e
