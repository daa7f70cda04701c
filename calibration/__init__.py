"""Calibration stage: real labelled data, streamed, fingerprinted and split without overlap."""

from __future__ import annotations

from frugalml.calibration.evaluate import EmbeddingScore, embed, score_embeddings
from frugalml.calibration.reviews import LabelledText, read_reviews, rotten_tomatoes_file
from frugalml.calibration.split import Split, hashed_split
from frugalml.calibration.text import TextCalibrationSet, build_text_set

__all__ = [
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
