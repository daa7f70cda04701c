"""The sweep spec (YAML or JSON) and the grid of cells it expands to.

A spec names models (each with a calibration set made by ``frugal calibrate``), recipes,
backends, targets and runtime settings; every combination is a cell. Everything is validated
before any work starts, with the field that is wrong in the message.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from pathlib import Path
from typing import Any

from frugalml.errors import FrugalError, SweepError

BACKENDS = ("onnxruntime", "openvino")
_TOP_KEYS = {"name", "models", "recipes", "backends", "targets", "settings", "eval_items",
             "samples", "bench"}
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
class RecipeEntry:
    """A quantize recipe by name, the quantizer that applies it, and recipe field overrides."""

    label: str
    recipe: str
    quantizer: str = "onnxruntime"
    options: tuple[tuple[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (part of the stage keys)."""
        return {"recipe": self.recipe, "quantizer": self.quantizer,
                "options": dict(self.options)}


@dataclasses.dataclass(frozen=True, slots=True)
class Cell:
    """One point of the grid."""

    model: ModelEntry
    recipe: RecipeEntry
    backend: str
    target: str
    threads: int

    @property
    def label(self) -> str:
        """Short, unique within a sweep: model/recipe/backend/target/threads."""
        return (f"{self.model.name}/{self.recipe.label}/{self.backend}/{self.target}/"
                f"{self.threads}t")


@dataclasses.dataclass(frozen=True, slots=True)
class SweepSpec:
    """A validated spec: the axes of the grid and how each cell is scored and timed."""

    name: str
    models: tuple[ModelEntry, ...]
    recipes: tuple[RecipeEntry, ...]
    backends: tuple[str, ...]
    targets: tuple[str, ...]
    threads: tuple[int, ...]
    eval_items: int = 200
    samples: int = 4
    bench: tuple[tuple[str, int], ...] = tuple(_BENCH_KEYS.items())

    def cells(self) -> list[Cell]:
        """Every combination, in spec order (models outermost, threads innermost)."""
        return [Cell(m, r, b, t, n) for m, r, b, t, n in itertools.product(
            self.models, self.recipes, self.backends, self.targets, self.threads)]


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
    recipes = tuple(_recipe(r, path) for r in _list(raw.get("recipes", ["fp32", "int8"]),
                                                    "recipes", path))
    for what, names in (("model name", [m.name for m in models]),
                        ("recipe label", [r.label for r in recipes])):
        if len(set(names)) < len(names):
            raise SweepError(f"{path}: each {what} must be unique (cells are named by them); "
                             f"got {names}. Set name (models) or label (recipes).")
    return SweepSpec(
        name=str(raw.get("name", path.stem)),
        models=models,
        recipes=recipes,
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
        raise SweepError(f"{path} must hold a mapping with models, recipes, backends, ...")
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


def _recipe(entry: Any, path: Path) -> RecipeEntry:
    from frugalml.quantize import get_quantizer
    from frugalml.quantize.recipe import get_recipe

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
    return RecipeEntry(label, str(name), str(quantizer), tuple(sorted(entry.items())))


def _backend(name: Any, path: Path) -> str:
    if name not in BACKENDS:
        raise SweepError(f"{path}: unknown backend {name!r}; use {' or '.join(BACKENDS)}.")
    return str(name)


def _target(name: Any, path: Path) -> str:
    from frugalml.targets import detect, get_target

    try:
        return detect().name if name == "auto" else get_target(str(name)).name
    except FrugalError as e:
        raise SweepError(f"{path}: {e}") from e
