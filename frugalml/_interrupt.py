"""Ctrl-C that survives libraries which wrap KeyboardInterrupt in their own exceptions.

torch's exporters turn an interrupt raised inside them into an exporter error; the fallback
chain would then treat it as one exporter failing and carry on with the next. The CLI records
the signal here, and every ``except Exception`` that continues after a failure asks first.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

_requested = threading.Event()


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    _requested.set()
    raise KeyboardInterrupt


def install() -> None:
    """Record Ctrl-C (then raise KeyboardInterrupt as usual); main thread only.

    Each CLI command starts with no interrupt recorded.
    """
    _requested.clear()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _on_sigint)


def reraise_if_interrupted(error: BaseException | None = None) -> None:
    """Raise KeyboardInterrupt if Ctrl-C was pressed or ``error`` was caused by one.

    Raises:
        KeyboardInterrupt: the user asked to stop, whatever a library turned it into.
    """
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, KeyboardInterrupt):
            raise KeyboardInterrupt from error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    if _requested.is_set():
        raise KeyboardInterrupt
