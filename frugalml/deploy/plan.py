"""What a deploy will do, settled before the long work: options, targets, the data reader,
and (after the export) the model's family, which decides the candidates.

Every bad option fails here with advice, so no export runs for a deploy that cannot finish.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from frugalml.deploy.candidates import parse_choice
from frugalml.deploy.families import GraphFacts, family_of
from frugalml.errors import FrugalError, InputError, TargetError
from frugalml.export.gguf import gguf_model_dir
from frugalml.export.huggingface import INPUT_NAMES, WITH_PAST, infer_task
from frugalml.export.model_info import read_model_info, recorded
from frugalml.quantize.accuracy import filled_by_prefill, open_model, task_of
from frugalml.quantize.recipe import Budget
from frugalml.runtime.formats import GGUF, ONNX, OPENVINO, is_gguf, model_format
from frugalml.runtime.workload import Workload
from frugalml.targets import detect, get_target

# Budget fields a deploy may set (the rest keep each recipe's defaults).
BUDGET_FIELDS = ("max_accuracy_drop_points", "min_mean_cosine", "min_top1_agreement",
                 "min_detection_agreement", "min_frame_agreement",
                 "max_perplexity_increase_pct", "max_size_ratio")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DeployOptions:
    """What `deploy` does; the defaults are the demo's."""

    targets: tuple[str, ...] = ("auto",)
    name: str | None = None             # bundles and reports; default: from the model path
    task: str | None = None
    budget: Mapping[str, float] = dataclasses.field(default_factory=dict)
    candidates: str = "default"
    time_budget_s: float = 1200.0
    threads: int = 0
    eval_items: int | None = None      # None: 2000 items, or 64 windows for a decoder
    calibration_items: int = 300
    sample_items: int = 4
    profile_runs: int = 200
    speed_cap_s: float = 60.0
    data_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    require_quantized: bool = False
    # The batch and shapes every candidate is timed at (default: batch 1, the data's shapes).
    workload: Workload = dataclasses.field(default_factory=Workload)

    def __post_init__(self) -> None:
        """Raises FrugalError for counts or names that make no sense, before any work."""
        counts = {"eval_items": 1 if self.eval_items is None else self.eval_items,
                  "calibration_items": self.calibration_items,
                  "sample_items": self.sample_items, "profile_runs": self.profile_runs}
        bad = {k: v for k, v in counts.items() if v < 1} | (
            {"threads": self.threads} if self.threads < 0 else {}) | (
            {"time_budget_s": self.time_budget_s} if not self.time_budget_s > 0 else {}) | (
            {"speed_cap_s": self.speed_cap_s} if not self.speed_cap_s > 0 else {})
        if bad:
            raise FrugalError(f"Deploy options out of range: {bad}. Counts must be at least 1, "
                              "times above 0 (threads: 0 lets the backend choose).")
        unknown = sorted(set(self.budget) - set(BUDGET_FIELDS))
        if unknown:
            raise FrugalError(f"Unknown budget fields {unknown}; use {', '.join(BUDGET_FIELDS)}.")

        Budget(**self.budget)  # an impossible limit fails now (QuantizationError)
        parse_choice(self.candidates)
        if not self.targets:
            raise TargetError("No target given: pass --targets auto or names from "
                              "`frugal targets`.")


def resolve_targets(names: tuple[str, ...]) -> list[Any]:
    """The targets by name or file; ``auto`` is this host's best one.

    Raises:
        TargetError: an unknown target, a malformed target file, or ``auto`` on a host no
            built-in target fits.
    """
    resolved = {}
    for name in names:
        target = detect() if name == "auto" else get_target(name)
        resolved.setdefault(target.name, target)
    return list(resolved.values())


def model_name(model: Any) -> str:
    """A short name for bundles and reports: the file or directory name, or the class."""
    if isinstance(model, (str, Path)):
        path = Path(model)
        if path.stem == "model" and path.parent.name:  # .../MiniLM/model, .../ir/model.xml
            return path.parent.name
        return path.stem if path.is_file() else path.name
    return type(model).__name__


def input_names(model: Any, example: Mapping[str, Any] | None) -> list[str]:
    """The input names of a model that is not an ONNX or IR file (whose signature says
    them): from its Hugging Face task, or the example.

    Raises:
        InputError: a torch module without ``example`` inputs.
    """
    if not isinstance(model, (str, Path)):
        if example is None:
            raise InputError("A torch module needs example inputs: deploy(module, data, "
                             "example={'input_name': array}).")
        return list(example)
    path = Path(model)

    if language_model_source(path):
        return ["input_ids", "attention_mask"]
    if (path / "config.json").is_file() and infer_task(path) == "image-classification":
        return ["pixel_values"]
    return list(INPUT_NAMES)


def language_model_source(model: Any) -> bool:
    """True for a GGUF file or a Hugging Face causal LM directory."""
    if not isinstance(model, (str, Path)):
        return False
    path = Path(model)
    if is_gguf(path):
        return True

    return (path / "config.json").is_file() and infer_task(path) == "text-generation"


def export_task(model: Any, language_model: bool | None = None) -> str | None:
    """The export deploy asks of ``model``: a decoder from its weights (a GGUF, a causal LM
    directory; ``language_model`` when the user said so) with its KV cache, fused, for
    generation; None for everything else (the exporter infers it)."""
    if language_model is None:
        language_model = language_model_source(model)
    return WITH_PAST if language_model and tokenizer_dir(model) else None


def tokenizer_dir(model: Any) -> Path | None:
    """The tokenizer of a Hugging Face directory or GGUF file, else None."""
    if not isinstance(model, (str, Path)):
        return None
    path = Path(model)
    if is_gguf(path):
        return gguf_model_dir(path)
    return path if (path / "config.json").is_file() else None


def scoring_task(model: Path, data: Any, given: str | None) -> str:
    """The task scoring will use, from one evaluation item through FP32."""
    session = open_model(model)
    try:
        return str(task_of(session, data, given)[0])
    finally:
        session.close()


def describe(exported: Any, data: Any, given_task: str | None, model: Any,
             origin_digest: str | None) -> Any:
    """The exported model's :class:`~frugalml.export.model_info.ModelInfo`: its task (one
    evaluation item through FP32), its graph read once without weights, its family (the
    first of the registry that claims it) and where it came from (``model``: the user's
    source, by kind and ``origin_digest``). Every later stage takes this record."""
    task = scoring_task(exported.path, data, given_task)
    info = read_model_info(
        exported.path, task=task, family="", origin=origin_of(model),
        origin_digest=origin_digest, filled=filled_by_prefill(exported.path),
        decoder=recorded(exported.path).decoder)
    family = family_of(GraphFacts(task=task, ops=Counter(info.ops))).name
    return dataclasses.replace(info, family=family)


def origin_of(model: Any) -> str:
    """What kind of source a model came as: ``gguf``, ``openvino``, ``onnx``,
    ``huggingface`` (a model directory) or ``torch`` (a module in memory)."""
    if not isinstance(model, (str, Path)):
        return "torch"
    fmt = model_format(model)
    return fmt if fmt in (GGUF, OPENVINO, ONNX) else "huggingface"


def source_format(info: Any) -> str:
    """What the export came from, as candidates' ``sources`` name it: ``openvino`` (an IR,
    kept IR), ``gguf`` (a llama.cpp file, whose blocks the gguf backend keeps), else
    ``onnx``."""
    return info.origin if info.origin in (GGUF, OPENVINO) else ONNX
