"""Text files (CSV, JSONL, TXT; optionally .gz/.bz2) tokenized with the model's own tokenizer."""

from __future__ import annotations

import bz2
import csv
import gzip
import hashlib
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from frugalml.calibration.images import natural_key
from frugalml.calibration.text import _tokenizer, tree_digest_of_tokenizer
from frugalml.errors import CalibrationError

_OPENERS = {".gz": gzip.open, ".bz2": bz2.open}
# label_column="auto": the first of these columns the file has, else no labels
AUTO_LABEL = "auto"
LABEL_COLUMNS = ("label", "labels", "category", "class")


class TextSource:
    """One text per item; tokenized per batch (padding to the batch's longest, truncation)."""

    kind = "texts"

    def __init__(self, path: Path, tokenizer_dir: Path, *, column: str = "text",
                 label_column: str | None = None, max_length: int = 128,
                 input_names: Sequence[str] = ("input_ids", "attention_mask", "token_type_ids"),
                 ) -> None:
        """Read the texts (not their tokens) once.

        Raises:
            CalibrationError: missing or unreadable file, or a column that does not exist.
        """
        self.path, self.column, self.label_column = Path(path), column, label_column
        self.max_length, self.input_names = max_length, tuple(input_names)
        self.tokenizer_dir = Path(tokenizer_dir)
        self.label_names: tuple[str, ...] = ()
        self._tokenizer = _tokenizer(str(self.tokenizer_dir))
        self._tokenizer_digest = tree_digest_of_tokenizer(self.tokenizer_dir)
        self.texts, self._labels = self._read()

    def _read(self) -> tuple[list[str], list[int | None]]:
        if not self.path.is_file():
            raise CalibrationError(f"{self.path} does not exist.")
        suffixes = self.path.suffixes
        opener = _OPENERS.get(suffixes[-1] if suffixes else "", open)
        kind = next((s for s in reversed(suffixes) if s in (".csv", ".jsonl", ".txt")), ".txt")
        try:
            with opener(self.path, "rt", encoding="utf-8", newline="") as f:
                text = f.read()
        except (OSError, EOFError, UnicodeDecodeError) as e:
            raise CalibrationError(f"Cannot read {self.path}: {e}.") from e
        if kind == ".txt":
            return [ln for ln in text.splitlines() if ln.strip()], []
        rows = (list(csv.DictReader(io.StringIO(text))) if kind == ".csv" else
                [json.loads(ln) for ln in text.splitlines() if ln.strip()])
        columns = sorted(rows[0]) if rows else []
        if self.label_column == AUTO_LABEL:
            self.label_column = next((c for c in LABEL_COLUMNS if rows and c in rows[0]), None)
        for wanted in (self.column, self.label_column):
            if wanted and rows and wanted not in rows[0]:
                raise CalibrationError(f"{self.path} has no column {wanted!r}; its columns are "
                                       f"{columns}. Pass --column / label_column.")
        texts = [str(r[self.column]) for r in rows]
        return texts, self._label_ids([str(r[self.label_column]) for r in rows]
                                      if self.label_column else [])

    def _label_ids(self, values: list[str]) -> list[int]:
        """Integer labels as they are; names (``fresh``, ``rotten``) as indices into their
        natural order, kept in ``label_names``."""
        if all(v.strip().lstrip("-").isdigit() for v in values):
            return [int(v) for v in values]
        self.label_names = tuple(sorted(set(values), key=natural_key))
        index = {name: i for i, name in enumerate(self.label_names)}
        return [index[v] for v in values]

    def keys(self) -> tuple[str, ...]:
        """The texts themselves: the same sentence twice is one item."""
        return tuple(self.texts)

    def labels(self) -> tuple[int | None, ...]:
        """Integer labels from ``label_column``, or None."""
        return tuple(self._labels) if self._labels else (None,) * len(self.texts)

    def describe(self) -> dict[str, Any]:
        """File, column and tokenization."""
        return {"path": str(self.path), "column": self.column, "max_length": self.max_length,
                "label_column": self.label_column, "label_names": list(self.label_names),
                "tokenizer_digest": self._tokenizer_digest, "input_names": list(self.input_names)}

    def content_digest(self) -> str:
        """sha256 of the texts and labels in order."""
        return hashlib.sha256(json.dumps([self.texts, self._labels]).encode()).hexdigest()

    def lengths(self, indices: Sequence[int]) -> list[int]:
        """Each text's token count after truncation: what its batch pads to."""
        enc = self._tokenizer([self.texts[i] for i in indices], truncation=True,
                              max_length=self.max_length)
        return [len(ids) for ids in enc["input_ids"]]

    def load(self, indices: Sequence[int]) -> dict[str, np.ndarray]:
        """Tokenize these texts, padded to the longest of them."""
        enc = self._tokenizer([self.texts[i] for i in indices], padding=True, truncation=True,
                              max_length=self.max_length, return_tensors="np")
        return {n: np.asarray(enc[n], dtype=np.int64) for n in self.input_names if n in enc}
