"""Hugging Face sentence encoders -> ONNX, exported offline, checked against torch on real text."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from frugalml._records import tree_digest
from frugalml.errors import ExportError, require
from frugalml.export.records import ExportedModel
from frugalml.export.validate import compare_outputs

INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT_NAMES = ("last_hidden_state", "sentence_embedding")
# Newest opset both ONNX Runtime and OpenVINO run well; blockwise int4/int8 DQ needs >= 21.
OPSET = 21
MAX_BATCH, MAX_SEQUENCE = 1024, 512


def load_encoder(model_dir: Path) -> tuple[Any, Any]:
    """Load tokenizer and model from a local directory: no hub access, no remote code.

    Raises:
        ExportError: the directory is missing or is not a Hugging Face model.
    """
    require("transformers", extra="toolchain")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModel, AutoTokenizer

    if not (Path(model_dir) / "config.json").is_file():
        raise ExportError(
            f"{model_dir} is not a Hugging Face model directory (no config.json). "
            "Pass the folder that holds config.json, the weights and the tokenizer."
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
        model = AutoModel.from_pretrained(
            model_dir, local_files_only=True, trust_remote_code=False
        ).eval()
    except (OSError, ValueError) as e:
        raise ExportError(f"Cannot load the model in {model_dir}: {e}") from e
    return tokenizer, model


def _pooling_wrapper(model: Any) -> Any:
    """Wrap the encoder so the graph also returns mean-pooled, L2-normalised embeddings.

    NOTE: the HF model is called by keyword; positional arguments collide with ``use_cache``.
    """
    import torch

    class SentenceEncoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):  # type: ignore[no-untyped-def]
            hidden = self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return hidden, torch.nn.functional.normalize(pooled, p=2, dim=1)

    return SentenceEncoder().eval()


def _export_dynamo(wrapper: Any, args: tuple[Any, ...], path: Path) -> None:
    import torch

    # The exporter logs a warning per missing torchvision op; irrelevant for text models.
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    batch = torch.export.Dim("batch", max=MAX_BATCH)
    sequence = torch.export.Dim("sequence", max=MAX_SEQUENCE)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper, args, str(path), input_names=list(INPUT_NAMES),
            output_names=list(OUTPUT_NAMES), opset_version=OPSET,
            dynamic_shapes={name: {0: batch, 1: sequence} for name in INPUT_NAMES},
            external_data=False, dynamo=True,
        )


def _export_torchscript(wrapper: Any, args: tuple[Any, ...], path: Path) -> None:
    import torch

    axes = {name: {0: "batch", 1: "sequence"} for name in INPUT_NAMES}
    axes["last_hidden_state"] = {0: "batch", 1: "sequence"}
    axes["sentence_embedding"] = {0: "batch"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper, args, str(path), input_names=list(INPUT_NAMES),
            output_names=list(OUTPUT_NAMES), opset_version=20, dynamic_axes=axes, dynamo=False,
        )


# Fixed fallback order: the first exporter that produces a loadable file wins.
_EXPORTERS = (("torch.onnx.dynamo", OPSET, _export_dynamo), ("torch.onnx.torchscript", 20,
              _export_torchscript))


def tokenize(tokenizer: Any, texts: Sequence[str], max_length: int) -> dict[str, np.ndarray]:
    """Tokenize to int64 arrays padded to the longest text (at most ``max_length`` tokens)."""
    enc = tokenizer(list(texts), padding=True, truncation=True, max_length=max_length,
                    return_tensors="np")
    return {name: np.asarray(enc[name], dtype=np.int64) for name in INPUT_NAMES}


def export_sentence_encoder(
    model_dir: Path, out_path: Path, sentences: Sequence[str], *, atol: float = 1e-4,
    min_cosine: float = 0.9999,
) -> ExportedModel:
    """Export ``model_dir`` to ``out_path`` and validate it against torch on ``sentences``.

    Raises:
        ExportError: every exporter failed, or the result differs from torch beyond tolerance.
    """
    import torch

    if not sentences:
        raise ExportError("Export validation needs at least one real sentence; none were given.")
    tokenizer, model = load_encoder(model_dir)
    wrapper = _pooling_wrapper(model)
    feeds = tokenize(tokenizer, sentences, max_length=128)
    args = tuple(torch.from_numpy(feeds[name]) for name in INPUT_NAMES)
    errors = []
    for name, version, fn in _EXPORTERS:
        try:
            fn(wrapper, args, out_path)
            exporter, opset = name, version
            break
        except Exception as e:  # exporters raise many unrelated types; all are reported below
            errors.append(f"{name}: {type(e).__name__}: {str(e)[:300]}")
    else:
        raise ExportError("Every exporter failed:\n  - " + "\n  - ".join(errors))
    with torch.no_grad():
        reference = dict(zip(OUTPUT_NAMES, (t.numpy() for t in wrapper(*args)), strict=True))
    checks = compare_outputs(reference, _run_onnx(out_path, feeds), atol=atol,
                             min_cosine=min_cosine)
    return ExportedModel(
        path=out_path, source=str(model_dir), source_digest=tree_digest(Path(model_dir)),
        exporter=exporter, opset=opset, input_names=INPUT_NAMES, output_names=OUTPUT_NAMES,
        checks=checks, inputs_used=len(sentences),
    )


def _run_onnx(path: Path, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return dict(zip(OUTPUT_NAMES, session.run(list(OUTPUT_NAMES), feeds), strict=True))
