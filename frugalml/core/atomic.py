"""Atomic directory writes shared by every stage that produces a directory (bundles, exports,
cache entries), and recovery from writers that were killed half-way."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from frugalml.core.interrupt import reraise_if_interrupted
from frugalml.errors import FrugalError

# Write failures that are the environment's, not a bug: they become a typed error with advice.
_STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM,
                   errno.ENOTDIR, errno.EISDIR}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover(dest: Path) -> None:
    """Undo what a killed writer of ``dest`` left behind.

    Staging dirs of dead processes are deleted. If the writer died between moving the old
    ``dest`` aside and moving the new one in, the old one is put back, so a reader finds the
    last complete version again.
    """
    prefix = f".{dest.name}.staging-"
    if dest.parent.is_dir():
        for leftover in dest.parent.glob(prefix + "*"):
            pid = leftover.name.removeprefix(prefix).split("-", 1)[0]
            if pid.isdigit() and not _pid_alive(int(pid)):
                shutil.rmtree(leftover, ignore_errors=True)
    old = dest.with_name(f".{dest.name}.old")
    if old.is_dir() and not dest.exists():
        old.rename(dest)
    shutil.rmtree(old, ignore_errors=True)


def storage_error(error: type[FrugalError], dest: Path, e: OSError) -> FrugalError:
    """A typed error for an OSError the user can fix (full disk, read-only or wrong path)."""
    reason = e.strerror or str(e)
    return error(
        f"Could not write {dest}: {reason}"
        + (f" ({e.filename})" if e.filename and str(e.filename) != str(dest) else "")
        + f". Nothing was written at {dest}. Free disk space or choose a writable output "
        "directory (--out), then run the step again."
    )


@contextlib.contextmanager
def staged(dest: Path, *, error: type[FrugalError] = FrugalError) -> Iterator[Path]:
    """Yield an empty staging dir; on success it replaces ``dest``, on failure it is deleted.

    A crash at any point leaves either the old directory or the new one at ``dest``, never
    half of one (a SIGKILL between the two renames leaves the old one aside, and the next
    writer puts it back, see :func:`recover`); nothing is committed after Ctrl-C, even one a
    library swallowed. Storage failures (disk full, read-only directory) raise ``error`` with
    advice instead of a bare ``OSError``.
    """
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        recover(dest)
        staging = Path(tempfile.mkdtemp(dir=dest.parent,
                                        prefix=f".{dest.name}.staging-{os.getpid()}-"))
    except OSError as e:
        raise storage_error(error, dest, e) from e
    try:
        yield staging
        # A library that swallowed Ctrl-C (a bare except) lets the work finish: not kept.
        reraise_if_interrupted()
        old = dest.with_name(f".{dest.name}.old")
        if dest.exists():
            dest.rename(old)
        staging.rename(dest)
        shutil.rmtree(old, ignore_errors=True)
    except OSError as e:
        shutil.rmtree(staging, ignore_errors=True)
        recover(dest)
        if e.errno in _STORAGE_ERRNOS:
            raise storage_error(error, dest, e) from e
        raise
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        recover(dest)
        raise
