"""Content-addressed stage cache: a stage's output dir is named by the hash of its inputs."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar


class _Record(Protocol):
    path: Path

    def to_dict(self) -> dict[str, Any]: ...


R = TypeVar("R", bound=_Record)
RECORD_NAME = "record.json"


def cached_stage(
    root: Path, stage: str, key: str, build: Callable[[Path], R],
    from_dict: Callable[[dict[str, Any]], R],
) -> tuple[R, bool]:
    """Return the cached record for ``key`` or run ``build(tmp_dir)`` and keep its output.

    The record's ``path`` is stored relative to the stage dir, so cache dirs can move. A build
    that fails leaves nothing behind.

    Returns:
        (record, True when it came from the cache)
    """
    final = root / f"{stage}-{key[:24]}"
    record_file = final / RECORD_NAME
    if record_file.is_file():
        data = json.loads(record_file.read_text())
        data["path"] = str(final / data["path"])
        return from_dict(data), True
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{stage}-"))
    try:
        record = build(tmp)
        data = record.to_dict()
        data["path"] = Path(data["path"]).relative_to(tmp).as_posix()
        (tmp / RECORD_NAME).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    data["path"] = str(final / data["path"])
    return from_dict(data), False
