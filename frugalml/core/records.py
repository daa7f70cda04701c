"""Helpers shared by the frozen records that flow between stages (standard library only)."""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import os
from pathlib import Path
from typing import Any


def to_jsonable(value: Any) -> Any:
    """Turn records, paths, enums and tuples into plain JSON values, recursively."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    return value


def canonical_json(value: Any) -> str:
    """Serialise ``value`` deterministically, so equal content gives equal digests."""
    return json.dumps(to_jsonable(value), sort_keys=True, separators=(",", ":"))


def digest(*parts: Any) -> str:
    """Content digest (sha256 hex) of any JSON-able parts, used as cache keys and record ids."""
    return hashlib.sha256(canonical_json(list(parts)).encode()).hexdigest()


# Digests of files this process read, by what identifies their content on disk.
_HASHED: dict[tuple[str, int, int, int], str] = {}


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    """Stream a file through sha256 without loading it whole, once per process: a file read
    before and unchanged since (same inode, size and modification time; frugalml replaces
    files by renaming new ones over them) answers from memory. A deploy asks a GGUF's digest
    at several stages, and a 253 MB file took about a second per read."""
    stat = os.stat(path)
    key = (os.path.realpath(path), stat.st_ino, stat.st_size, stat.st_mtime_ns)
    if key not in _HASHED:
        _HASHED[key] = _read_sha256(Path(path), chunk)
    return _HASHED[key]


def _read_sha256(path: Path, chunk: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def check_schema(data: dict[str, Any], kind: str, supported: int) -> None:
    """Refuse records written by a newer frugalml instead of misreading them.

    Raises:
        ValueError: the record's schema version is missing or newer than ``supported``.
    """
    version = data.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool) or version > supported:
        raise ValueError(
            f"{kind} record has schema_version {version!r}; this frugalml reads up to "
            f"{supported}: upgrade frugalml, or rebuild the record with this version."
        )


def write_json_atomic(path: Path, value: Any) -> None:
    """Write JSON through a temp file and rename, so readers never see half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(to_jsonable(value), indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


def write_text_atomic(path: Path, text: str) -> None:
    """Write text through a temp file and rename, so readers never see half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def tree_digest(root: Path, exclude: tuple[str, ...] = ()) -> str:
    """Digest of every file under ``root`` (names and contents), independent of walk order.

    ``exclude`` names top-level-relative paths left out (a record stored beside the content).
    """
    entries = [
        (p.relative_to(root).as_posix(), file_sha256(p))
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.relative_to(root).as_posix() not in exclude
    ]
    return digest(entries)
