"""Progress on stderr for long steps (stdout stays clean for --json)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

from frugalml.core.interrupt import reraise_if_interrupted

T = TypeVar("T")


class Steps:
    """Shows a spinner per step and a line with its duration when it ends."""

    def __init__(self, *, quiet: bool = False) -> None:
        from rich.console import Console

        # soft_wrap: a long line stays one line in a log (rich broke them at 80 columns
        # whenever stderr was not a terminal)
        self.console = Console(stderr=True, quiet=quiet, soft_wrap=True)

    @contextlib.contextmanager
    def step(self, title: str, *, spinner: bool = True) -> Iterator[None]:
        """Run a block under a spinner (off when the block shows its own bar); print its time."""
        start = time.perf_counter()
        with self.console.status(title + " ...") if spinner else contextlib.nullcontext():
            yield
        reraise_if_interrupted()  # a library may have swallowed Ctrl-C inside the step
        self.console.print(f"[green]done[/green] {title} ({time.perf_counter() - start:.1f} s)")

    def note(self, text: str) -> None:
        """Print one informational line."""
        self.console.print(text)

    def track(self, items: Iterable[T], *, total: int, title: str) -> Iterator[T]:
        """Iterate with a progress bar: ``title  12/64 [bar] 0:03:10 left``."""
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        with Progress(TextColumn("{task.description}"), MofNCompleteColumn(), BarColumn(),
                      TimeRemainingColumn(), TextColumn("left"), console=self.console,
                      transient=True) as progress:
            yield from progress.track(items, total=total, description=title)
