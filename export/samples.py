"""Real validation inputs for Hugging Face exports when the caller brings none.

Export checks must run on real inputs, not zeros: zeros hide errors in attention masks,
normalisation and padding. Texts are ordinary English of very different lengths (the dynamic
sequence axis must hold at both ends); images are scikit-learn's two bundled photographs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from frugalml.errors import ExportError

SAMPLE_TEXTS = (
    "The battery died.",
    "A quiet, funny film that knows exactly when to stop talking.",
    "Edge devices run models close to the data: a phone that transcribes speech without a "
    "network, a camera that counts cars at a crossing, a laptop that sorts photographs while "
    "it is offline. Each of them has a few cores, a little memory and a power budget, so the "
    "model has to be small and fast, and it still has to give the same answers it gave on the "
    "workstation where it was trained, which is why every exported graph is checked against "
    "the original on real sentences like this one before anything is shipped to a device.",
)


# The inputs a BERT-style encoder takes, in the order its exports name them.
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")


def tokenize(tokenizer: Any, texts: Sequence[str], max_length: int,
             names: Sequence[str] = INPUT_NAMES) -> dict[str, np.ndarray]:
    """Tokenize to int64 arrays padded to the longest text (at most ``max_length`` tokens)."""
    enc = tokenizer(list(texts), padding=True, truncation=True, max_length=max_length,
                    return_tensors="np")
    return {name: np.asarray(enc[name], dtype=np.int64) for name in names if name in enc}


def text_feeds(tokenizer: Any, texts: Sequence[str], input_names: Sequence[str],
               max_length: int) -> list[dict[str, np.ndarray]]:
    """Batches that exercise the dynamic axes: all texts padded together, then each alone."""
    if not texts:
        raise ExportError("Export validation needs at least one real text; none were given.")
    batches = [tokenize(tokenizer, texts, max_length, input_names)]
    batches += [tokenize(tokenizer, [t], max_length, input_names) for t in texts]
    return batches


def sample_images() -> list[np.ndarray]:
    """scikit-learn's bundled photographs (HWC uint8 RGB); no download."""
    from sklearn.datasets import load_sample_images

    return list(load_sample_images().images)


def image_feeds(model_dir: Path, images: Sequence[np.ndarray | Path] | None
                ) -> list[dict[str, np.ndarray]]:
    """``pixel_values`` batches from the model's own image processor: all images, then one."""
    from PIL import Image
    from transformers import AutoImageProcessor

    try:
        processor = AutoImageProcessor.from_pretrained(model_dir, local_files_only=True,
                                                       use_fast=False)
    except (OSError, ValueError) as e:
        raise ExportError(
            f"{model_dir} has no image preprocessor config ({e}); pass validation inputs "
            "(pixel_values arrays) explicitly.") from e
    loaded = [np.asarray(Image.open(i).convert("RGB")) if isinstance(i, (str, Path)) else i
              for i in (images if images is not None else sample_images())]
    if not loaded:
        raise ExportError("Export validation needs at least one real image; none were given.")
    pixels = np.asarray(processor(images=loaded, return_tensors="np")["pixel_values"],
                        dtype=np.float32)
    return [{"pixel_values": pixels}, {"pixel_values": pixels[:1]}]
