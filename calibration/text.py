"""Text calibration sets: labelled snippets tokenized with the model's own tokenizer, streamed."""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from frugalml.calibration.batching import batched
from frugalml.calibration.reviews import LabelledText, read_reviews
from frugalml.calibration.split import ORDER, hashed_split
from frugalml.core.records import digest, file_sha256, tree_digest
from frugalml.errors import CalibrationError, require

PARTS = ("calibration", "evaluation")


@functools.lru_cache(maxsize=4)
def _tokenizer(tokenizer_dir: str) -> Any:
    require("transformers", extra="toolchain")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir, local_files_only=True)
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token  # decoders ship none; the mask hides padding
    return tokenizer


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TextCalibrationSet:
    """Where the texts come from, how they are tokenized, and which fall in each part."""

    schema_version: int = 1
    source: Path
    source_sha256: str
    tokenizer_dir: Path
    tokenizer_digest: str
    input_names: tuple[str, ...]
    max_length: int
    salt: str
    calibration: tuple[int, ...]
    evaluation: tuple[int, ...]
    duplicates_dropped: int

    @property
    def fingerprint(self) -> str:
        """Hash of the data content, the preprocessing and the split: the cache key downstream."""
        return digest("text-calibration-set", self.source_sha256, self.tokenizer_digest,
                      self.input_names, self.max_length, self.salt, len(self.calibration), ORDER)

    def summary(self) -> dict[str, Any]:
        """Small description for manifests and reports (no index lists)."""
        return {
            "fingerprint": self.fingerprint, "source": self.source.name,
            "source_sha256": self.source_sha256, "tokenizer_digest": self.tokenizer_digest,
            "max_length": self.max_length, "calibration_items": len(self.calibration),
            "evaluation_items": len(self.evaluation),
            "calibration_fingerprint": digest("calibration", self.source_sha256,
                                              self.calibration),
            "evaluation_fingerprint": digest("evaluation", self.source_sha256, self.evaluation),
            "duplicates_dropped": self.duplicates_dropped,
        }

    def items(self, part: str, limit: int | None = None) -> Iterator[LabelledText]:
        """Stream the texts of one part from the source file, in file order.

        Raises:
            CalibrationError: ``part`` is not 'calibration' or 'evaluation'.
        """
        if part not in PARTS:
            raise CalibrationError(f"Unknown part {part!r}; use one of {PARTS}.")
        wanted = set(getattr(self, part)[:limit] if limit else getattr(self, part))
        for index, item in enumerate(read_reviews(self.source)):
            if index in wanted:
                yield item

    def size(self, part: str) -> int:
        """How many texts ``part`` holds."""
        if part not in PARTS:
            raise CalibrationError(f"Unknown part {part!r}; use one of {PARTS}.")
        return len(getattr(self, part))

    def batches(
        self, part: str, *, batch_size: int, limit: int | None = None, by_length: bool = False
    ) -> Iterator[tuple[dict[str, np.ndarray], np.ndarray]]:
        """Yield (model inputs padded to the batch's longest text, labels) for one part;
        ``by_length`` groups texts of similar length (:mod:`frugalml.calibration.batching`)."""
        tokenizer = _tokenizer(str(self.tokenizer_dir))

        def lengths(chunk: Sequence[LabelledText]) -> list[int]:
            enc = tokenizer([c.text for c in chunk], truncation=True, max_length=self.max_length)
            return [len(ids) for ids in enc["input_ids"]]

        for chunk in batched(self.items(part, limit), batch_size,
                             lengths if by_length else None):
            yield self._encode(tokenizer, chunk)

    def _encode(
        self, tokenizer: Any, chunk: list[LabelledText]
    ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        enc = tokenizer([c.text for c in chunk], padding=True, truncation=True,
                        max_length=self.max_length, return_tensors="np")
        feeds = {name: np.asarray(enc[name], dtype=np.int64) for name in self.input_names}
        return feeds, np.array([c.label for c in chunk], dtype=np.int64)


def build_text_set(
    source: Path, tokenizer_dir: Path, *, input_names: tuple[str, ...],
    calibration_size: int = 300, max_length: int = 128, salt: str = "frugalml",
) -> TextCalibrationSet:
    """Read ``source`` once to split it; later passes stream it again part by part.

    Raises:
        CalibrationError: the file is missing, corrupt, empty, or too small for the split.
    """
    texts = [item.text for item in read_reviews(source)]
    if not texts:
        raise CalibrationError(f"{source} holds no usable texts; the calibration set is empty.")
    split = hashed_split(texts, calibration_size=calibration_size, salt=salt)
    return TextCalibrationSet(
        source=Path(source), source_sha256=file_sha256(source), tokenizer_dir=Path(tokenizer_dir),
        tokenizer_digest=tree_digest_of_tokenizer(Path(tokenizer_dir)), input_names=input_names,
        max_length=max_length, salt=salt, calibration=split.calibration,
        evaluation=split.evaluation, duplicates_dropped=split.duplicates_dropped,
    )


def tree_digest_of_tokenizer(model_dir: Path) -> str:
    """Digest of the tokenizer files only (weights do not change preprocessing)."""
    names = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")
    present = [model_dir / n for n in names if (model_dir / n).is_file()]
    if not present:
        return tree_digest(model_dir)
    return digest([(p.name, file_sha256(p)) for p in present])
