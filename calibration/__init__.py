"""Calibration stage: real labelled data, streamed, fingerprinted and split without overlap."""

from __future__ import annotations

from frugalml.calibration.arrays import ArraySource, from_items, read_arrays
from frugalml.calibration.dataset import CalibrationSet, make_set
from frugalml.calibration.evaluate import EmbeddingScore, embed, score_embeddings
from frugalml.calibration.images import PRESETS, ImageFolder
from frugalml.calibration.metrics import (
    Metric,
    output_cosine,
    perplexity,
    top1_agreement,
    top_k_accuracy,
)
from frugalml.calibration.reviews import LabelledText, read_reviews, rotten_tomatoes_file
from frugalml.calibration.split import Split, hashed_split
from frugalml.calibration.text import TextCalibrationSet, build_text_set
from frugalml.calibration.textfile import TextSource
from frugalml.calibration.windows import TokenWindows

__all__ = [
    "PRESETS",
    "ArraySource",
    "CalibrationSet",
    "ImageFolder",
    "Metric",
    "TextSource",
    "TokenWindows",
    "from_items",
    "make_set",
    "output_cosine",
    "perplexity",
    "read_arrays",
    "top1_agreement",
    "top_k_accuracy",
    "EmbeddingScore",
    "LabelledText",
    "Split",
    "TextCalibrationSet",
    "build_text_set",
    "embed",
    "hashed_split",
    "read_reviews",
    "rotten_tomatoes_file",
    "score_embeddings",
]
