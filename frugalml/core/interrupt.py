"""Ctrl-C that survives libraries which wrap KeyboardInterrupt in their own exceptions.

torch's exporters turn an interrupt raised inside them into an exporter error; the fallback
chain would then treat it as one exporter failing and carry on with the next. The CLI records
the signal here, and every ``except Exception`` that continues after a failure asks first.

CPython 3.11 remembers a Ctrl-C that passed through any ``exec``/``eval`` of a *string* (a
global "unhandled KeyboardInterrupt" flag, set in ``run_eval_code_obj`` and never cleared),
even when our handler caught it. Under ``python -m``, ``Py_RunMain`` then resets SIGINT to
its default and kills the process with it after a clean ``return 130``: exit -2, no
traceback. ``dataclasses`` builds every ``__init__`` with ``exec(str)``: importing torch,
transformers and onnxscript runs 2,935 of them (0.24 s), so a Ctrl-C early in an export
lands inside one often enough to fail one CI run in three. :func:`exit_process` finishes
the interpreter itself so that flag is never read.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
from types import FrameType
from typing import NoReturn

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


def exit_process(code: int) -> NoReturn:
    """Exit with ``code``; after a handled Ctrl-C, without letting CPython re-kill us.

    Everything the interpreter's own shutdown would do that matters here is done first:
    atexit handlers (Ray's shutdown, temporary directories) and flushing stdout/stderr.
    Other exits take the normal path.
    """
    if code != 130:
        raise SystemExit(code)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut this short
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed or broken pipe: nothing left to say
            pass
    os._exit(code)
