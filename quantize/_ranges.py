"""Calibration ranges kept for the process, so a graph is calibrated once however often it is
quantized.

The mixed-precision search and `frugal diagnose` quantize one graph again and again with other
nodes kept in float. ONNX Runtime's calibration (the graph, every quantizable tensor made an
output, run over every calibration item) does not depend on which nodes are excluded, and it
was about half of each such quantization (MiniLM, 300 items, Zen 4: 4.1 s of 7.6-9.6 s).
ONNX Runtime reads and writes the ranges itself (``quantize_static``'s
``calibration_cache_path``); this module names the file by everything the ranges depend on and
remembers how many calibration items they came from, for the record. The files live in a
temporary folder removed when the process exits: nothing outlives the run that made it.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

from frugalml.core.records import digest, file_sha256

_FOLDER: list[Path] = []            # created on first use
_ITEMS: dict[Path, int] = {}        # ranges file -> calibration items behind it


def ranges_file(model: Path, *depends_on: object) -> Path:
    """Where the ranges of calibrating ``model`` (by content) as ``depends_on`` says (operator
    types, method, the data's fingerprint, item count, the library's version) are kept."""
    if not _FOLDER:
        _FOLDER.append(Path(tempfile.mkdtemp(prefix="frugalml-ranges-")))
        atexit.register(shutil.rmtree, _FOLDER[0], True)
    return _FOLDER[0] / f"{digest('ort-ranges', file_sha256(model), *depends_on)[:40]}.json"


def items_behind(ranges: Path) -> int | None:
    """The calibration items ``ranges`` came from, if this process wrote it; else None."""
    return _ITEMS.get(ranges) if ranges.is_file() else None


def remember(ranges: Path, items: int) -> None:
    """Note that ``ranges`` (now written) came from ``items`` calibration items."""
    if ranges.is_file():
        _ITEMS[ranges] = items
