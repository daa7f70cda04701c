"""Cutting a part's items into batches, optionally grouped by length.

Texts are padded to the longest of their batch, so a batch of one long and 31 short texts
costs 32 long ones. Scoring groups items of similar length: the items are read in windows of
``WINDOW_BATCHES`` batches and each window is sorted by length (stable) before it is cut.
Measured on the demo's 1,000 Rotten Tomatoes evaluation texts (MiniLM, batches of 32, AMD
EPYC family 23 model 1): FP32 scoring 33.7 s in file order, 12.1 s grouped; the token
positions run fall from 53,232 to about 28,600 (27,690 without any padding).

Windows, not one sort of the whole part: the part stays streamed, and scoring stopped at a
deadline has seen whole windows of every length, not only the shortest items.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice
from typing import TypeVar

Item = TypeVar("Item")

WINDOW_BATCHES = 16


def batched(items: Iterable[Item], batch_size: int,
            lengths: Callable[[Sequence[Item]], Sequence[int]] | None = None
            ) -> Iterator[list[Item]]:
    """``items`` in batches of ``batch_size`` (the last may be short), in their order, or with
    ``lengths`` (one length per item of a window) grouped by length within each window."""
    window = batch_size * (WINDOW_BATCHES if lengths is not None else 1)
    it = iter(items)
    while chunk := list(islice(it, window)):
        if lengths is not None:
            sizes = lengths(chunk)
            chunk = [chunk[i] for i in sorted(range(len(chunk)), key=sizes.__getitem__)]
        for start in range(0, len(chunk), batch_size):
            yield chunk[start:start + batch_size]
