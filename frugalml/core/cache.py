"""Content-addressed stage cache: a stage's output dir is named by the hash of its inputs.

Entries are written atomically (see _atomic) and carry a digest of their own files, so an entry
that was damaged on disk after it was written is detected on the next read and rebuilt.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

from frugalml.core.atomic import recover, staged
from frugalml.core.records import tree_digest
from frugalml.errors import FrugalError


class _Record(Protocol):
    path: Path

    def to_dict(self) -> dict[str, Any]: ...


R = TypeVar("R", bound=_Record)
RECORD_NAME = "record.json"


def _content_digest(entry: Path) -> str:
    """Digest of every file of a cache entry except its record."""
    return tree_digest(entry, exclude=(RECORD_NAME,))


def _read_entry(entry: Path) -> dict[str, Any] | None:
    """The entry's record if the entry is intact, else None (missing, unreadable or changed)."""
    try:
        data = json.loads((entry / RECORD_NAME).read_text())
        intact = data.pop("content_digest") == _content_digest(entry)
    except (OSError, ValueError, KeyError, AttributeError, TypeError):
        return None
    return data if intact else None


def cached_stage(
    root: Path, stage: str, key: str, build: Callable[[Path], R],
    from_dict: Callable[[dict[str, Any]], R],
    reusable: Callable[[dict[str, Any]], bool] | None = None,
) -> tuple[R, bool]:
    """Return the cached record for ``key`` or run ``build(tmp_dir)`` and keep its output.

    ``reusable`` may refuse an intact entry by its record (``path`` made absolute): a result
    cut short by a time budget is then rebuilt like a missing one.

    The record's ``path`` is stored relative to the stage dir, so cache dirs can move. A build
    that fails, or a process killed mid-build, leaves nothing at the entry's path; an entry
    whose files no longer match their digest is deleted and rebuilt.

    Returns:
        (record, True when it came from the cache)
    """
    final = root / f"{stage}-{key[:24]}"
    recover(final)
    if final.exists():
        data = _read_entry(final)
        if data is not None:
            data["path"] = str(final / data["path"])
            if reusable is None or reusable(data):
                return from_dict(data), True
        shutil.rmtree(final, ignore_errors=True)
    with staged(final, error=FrugalError) as tmp:
        record = build(tmp)
        data = record.to_dict()
        data["path"] = Path(data["path"]).relative_to(tmp).as_posix()
        (tmp / RECORD_NAME).write_text(
            json.dumps({**data, "content_digest": _content_digest(tmp)}, indent=2,
                       sort_keys=True) + "\n")
    data["path"] = str(final / data["path"])
    return from_dict(data), False
