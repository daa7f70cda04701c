"""Hugging Face models (encoders, image classifiers, causal LMs) -> ONNX, offline, validated.

Models load from a local directory only: no hub access, never ``trust_remote_code``. Each task
wraps the model so its graph has plain tensor inputs and named outputs, and declares which
axes are dynamic; the exporter chain (dynamo, TorchScript, then Optimum) does the rest.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from frugalml.core.records import tree_digest
from frugalml.errors import ExportError, require
from frugalml.export.exporters import DEFAULT_OPSET, Exporter, GraphSpec, quiet_exporter
from frugalml.export.records import ExportedModel
from frugalml.export.samples import (
    INPUT_NAMES,
    SAMPLE_TEXTS,
    image_feeds,
    text_feeds,
    tokenize,
)
from frugalml.export.torch_module import Feeds, export_module
from frugalml.export.validate import DEFAULT_TOLERANCE, Tolerance

# text-generation-with-past: a decoder with its KV cache, for generation (export.decoder)
WITH_PAST = "text-generation-with-past"
TASKS = ("feature-extraction", "image-classification", "text-generation", WITH_PAST)
OUTPUT_NAMES = ("last_hidden_state", "sentence_embedding")
OPSET = DEFAULT_OPSET
_TEXT_AXES = {0: "batch", 1: "sequence"}


def infer_task(model_dir: Path) -> str:
    """The task a model directory's ``config.json`` architecture implies."""
    config = load_config(model_dir)
    arch = (getattr(config, "architectures", None) or [""])[0]
    if arch.endswith("ForImageClassification"):
        return "image-classification"
    if arch.endswith("ForCausalLM"):
        return "text-generation"
    return "feature-extraction"


def load_config(model_dir: Path) -> Any:
    """Read ``config.json`` offline.

    Raises:
        ExportError: the path is missing or is not a Hugging Face model directory.
    """
    require("transformers", extra="toolchain")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoConfig

    model_dir = Path(model_dir)
    if not model_dir.exists():
        raise ExportError(f"{model_dir} does not exist. Pass a model directory or an .onnx file.")
    if not (model_dir / "config.json").is_file():
        raise ExportError(
            f"{model_dir} is not a Hugging Face model directory (no config.json). "
            "Pass the folder that holds config.json, the weights and the tokenizer or "
            "preprocessor files (save_pretrained writes all of them).")
    _refuse_remote_code(model_dir)
    try:
        return AutoConfig.from_pretrained(model_dir, local_files_only=True,
                                          trust_remote_code=False)
    except (OSError, ValueError) as e:
        raise ExportError(f"Cannot read {model_dir}/config.json: {e}") from e


def _refuse_remote_code(model_dir: Path) -> None:
    """Refuse directories whose config asks to import Python files shipped with the model.

    Raises:
        ExportError: ``config.json`` is not JSON, or it has an ``auto_map`` (custom code).
    """
    try:
        config = json.loads((model_dir / "config.json").read_text())
    except (OSError, ValueError) as e:
        raise ExportError(f"Cannot read {model_dir}/config.json: {e}") from e
    if isinstance(config, dict) and config.get("auto_map"):
        refs = config["auto_map"].values() if isinstance(config["auto_map"], dict) else []
        names = [r for v in refs for r in (v if isinstance(v, list) else [v])
                 if isinstance(r, str)]
        modules = sorted({r.split("--")[-1].split(".")[0] + ".py" for r in names}) or ["?"]
        raise ExportError(
            f"{model_dir} asks to run its own Python code ({', '.join(modules)} through "
            "'auto_map' in config.json). frugalml never runs code from a model directory "
            "(trust_remote_code stays off). Load the model in Python from code you have "
            "reviewed and pass the torch module to frugalml.export.export() instead."
        )


def load_model(model_dir: Path, task: str) -> Any:
    """Load the model class for ``task`` from ``model_dir`` in eval mode, float32, offline."""
    load_config(model_dir)
    from transformers import AutoModel, AutoModelForCausalLM, AutoModelForImageClassification

    auto = {"feature-extraction": AutoModel, "image-classification":
            AutoModelForImageClassification, "text-generation": AutoModelForCausalLM}[_task(task)]
    try:
        return auto.from_pretrained(model_dir, local_files_only=True, trust_remote_code=False,
                                    dtype="float32").eval()
    except (OSError, ValueError) as e:
        if _refused_pickle(e):
            raise ExportError(
                f"The weights in {model_dir} are a pickle that holds more than tensors, so "
                "torch's weights-only loader refused it (frugalml never unpickles arbitrary "
                "objects: that could run code). Save the model as safetensors "
                "(save_pretrained(..., safe_serialization=True)) from code you trust.") from e
        raise ExportError(f"Cannot load the {task} model in {model_dir}: {e}") from e


def _refused_pickle(error: BaseException | None) -> bool:
    """True when the error chain holds an UnpicklingError (weights-only loading refused)."""
    import pickle

    while error is not None:
        if isinstance(error, pickle.UnpicklingError):
            return True
        error = error.__cause__ or error.__context__
    return False


def load_encoder(model_dir: Path) -> tuple[Any, Any]:
    """Tokenizer and encoder model from a local directory (the demo's sentence encoder)."""
    return load_tokenizer(model_dir), load_model(model_dir, "feature-extraction")


def load_tokenizer(model_dir: Path) -> Any:
    """The model's own tokenizer, offline."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    except (OSError, ValueError) as e:
        raise ExportError(f"{model_dir} has no usable tokenizer ({e}). Pass inputs explicitly "
                          "or save the tokenizer beside the model.") from e
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token  # decoders ship none; the mask hides padding
    return tokenizer


def _task(task: str) -> str:
    if task not in TASKS:
        raise ExportError(f"Unknown task {task!r}; frugalml exports {', '.join(TASKS)}.")
    return task


def _wrap(model: Any, task: str, input_names: tuple[str, ...]) -> tuple[Any, GraphSpec]:
    """A module with positional tensor inputs and tuple outputs, and its graph spec.

    NOTE: HF models are called by keyword; positional arguments collide with ``use_cache``.
    """
    import torch

    class Wrapped(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        # Explicit parameters, not *args: torch.export maps dynamic_shapes onto them.
        def forward(self, x0, x1=None, x2=None):  # type: ignore[no-untyped-def]
            tensors = (x0, x1, x2)[: len(input_names)]
            kwargs = dict(zip(input_names, tensors, strict=True))
            if task == "image-classification":
                return self.model(**kwargs).logits
            if task == "text-generation":
                return self.model(**kwargs, use_cache=False).logits
            hidden = self.model(**kwargs).last_hidden_state
            mask = kwargs["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return hidden, torch.nn.functional.normalize(pooled, p=2, dim=1)

    if task == "image-classification":
        spec = GraphSpec(input_names, ("logits",), {"pixel_values": {0: "batch"}})
    elif task == "text-generation":
        spec = GraphSpec(input_names, ("logits",),
                         {**{n: _TEXT_AXES for n in input_names}, "logits": _TEXT_AXES},
                         {"batch": 1024, "sequence": _max_positions(model)})
    else:
        spec = GraphSpec(input_names, OUTPUT_NAMES,
                         {**{n: _TEXT_AXES for n in input_names}, "last_hidden_state": _TEXT_AXES},
                         {"batch": 1024, "sequence": _max_positions(model)})
    return Wrapped().eval(), spec


def _max_positions(model: Any) -> int:
    return int(getattr(model.config, "max_position_embeddings", 512) or 512)


def optimum_exporter(model_dir: Path, task: str, opset: int) -> Exporter:
    """Optimum's exporter as the last fallback; it writes its own output names."""

    def run(path: Path) -> int:
        require("optimum.exporters.onnx", extra="toolchain")
        from optimum.exporters.onnx import main_export

        with tempfile.TemporaryDirectory(dir=path.parent) as tmp, quiet_exporter():
            main_export(str(model_dir), tmp, task=task, opset=opset, local_files_only=True,
                        trust_remote_code=False, do_validation=False,
                        library_name="transformers")
            shutil.move(Path(tmp) / "model.onnx", path)
        return opset

    return Exporter("optimum", run)


def export_huggingface(
    model: Path | Any, out_dir: Path, *, task: str | None = None,
    texts: Sequence[str] | None = None, images: Sequence[Any] | None = None,
    validation: Sequence[Feeds] = (), opset: int = OPSET, tolerance: Tolerance = DEFAULT_TOLERANCE,
    max_length: int = 128, simplify_graph: bool = True, repro_dir: Path | None = None,
) -> ExportedModel:
    """Export a HF model (a local directory, or a loaded model) to ``out_dir/model.onnx``.

    Validation runs on ``validation`` feeds if given, else on ``texts``/``images`` (default:
    built-in sample texts, scikit-learn's sample photographs) prepared by the model's own
    tokenizer or image processor.

    Raises:
        ExportError: the directory is not a HF model, the task is unknown, inputs are missing,
            every exporter failed, or the export differs from torch.
    """
    model_dir = Path(model) if isinstance(model, (str, Path)) else Path(
        getattr(model, "name_or_path", "") or ".")
    from_dir = isinstance(model, (str, Path))
    task = _task(task or (infer_task(model_dir) if from_dir else _task_of(model)))
    hf_model = load_model(model_dir, task) if from_dir else model.eval()
    feeds = list(validation) or huggingface_feeds(model_dir, task, texts, images, max_length)
    wrapped, spec = _wrap(hf_model, task, tuple(feeds[0]))
    extra = [optimum_exporter(model_dir, task, opset)] if from_dir else []
    digest = tree_digest(model_dir) if from_dir else ""
    return export_module(
        wrapped, feeds[0], out_dir, spec, validation=feeds[1:], tolerance=tolerance,
        opset=opset, source=str(model_dir) if from_dir else type(model).__name__,
        source_digest=digest, extra_exporters=extra, simplify_graph=simplify_graph,
        repro_dir=repro_dir,
        repro_construct=_repro_construct(model_dir, task, spec.input_names) if from_dir else None)


def huggingface_feeds(model_dir: Path, task: str, texts: Sequence[str] | None = None,
                      images: Sequence[Any] | None = None, max_length: int = 128
                      ) -> list[dict[str, np.ndarray]]:
    """Real validation batches prepared by the model's own tokenizer or image processor."""
    if _task(task) == "image-classification":
        return image_feeds(model_dir, images)
    tokenizer = load_tokenizer(model_dir)
    wanted = INPUT_NAMES if task == "feature-extraction" else INPUT_NAMES[:2]
    names = [n for n in wanted if n in tokenizer.model_input_names] or ["input_ids"]
    return text_feeds(tokenizer, texts or SAMPLE_TEXTS, names, max_length)


def _task_of(model: Any) -> str:
    name = type(model).__name__
    if name.endswith("ForImageClassification"):
        return "image-classification"
    return "text-generation" if name.endswith("ForCausalLM") else "feature-extraction"


def _repro_construct(model_dir: Path, task: str, input_names: tuple[str, ...]) -> str:
    """Script lines that rebuild the wrapper frugalml exported (weights come from the dir)."""
    auto = {"feature-extraction": "AutoModel", "image-classification":
            "AutoModelForImageClassification", "text-generation": "AutoModelForCausalLM"}[task]
    extra = ", use_cache=False" if task == "text-generation" else ""
    return (
        f"from transformers import {auto}\n\n\n"
        "class Wrapped(torch.nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        f"        self.model = {auto}.from_pretrained({str(model_dir)!r}, local_files_only=True)"
        "\n\n"
        "    def forward(self, *tensors):\n"
        f"        return self.model(**dict(zip({list(input_names)!r}, tensors)){extra})[0]\n\n\n"
        "model = Wrapped()")


def export_sentence_encoder(model_dir: Path, out_path: Path, sentences: Sequence[str]
                            ) -> ExportedModel:
    """The demo's export: a sentence encoder with mean-pooled embeddings, checked on
    ``sentences`` (real review texts).
    """
    if not sentences:
        raise ExportError("Export validation needs at least one real sentence; none were given.")
    tokenizer = load_tokenizer(model_dir)
    feeds = [tokenize(tokenizer, sentences, 128)]
    return export_huggingface(model_dir, out_path.parent, task="feature-extraction",
                              validation=feeds, tolerance=Tolerance(min_cosine=0.9999))
