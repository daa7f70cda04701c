"""Score every output of a model, and every part of an output whose scale differs, against FP32.

One cosine over a whole tensor is dominated by its largest values: a detector's output that
concatenates box coordinates (0-320 pixels) with class scores (0-1) kept a cosine of 0.9994
while quantization had turned every score into 0 or 1.24. So each output is also split into
channel groups whose FP32 ranges differ by more than :data:`GROUP_RATIO`, learned on the
evaluation items, and each group is scored on its own.

The sums are streamed: per item and channel, the dot products of FP32 with the candidate and
of each with itself. Any group's per-item cosine follows from them, so outputs of any size
and of varying lengths (token outputs) are scored in bounded memory.
"""

from __future__ import annotations

import dataclasses

import numpy as np

# Channels whose FP32 spreads (max - min) differ by more than this are scored apart.
GROUP_RATIO = 8.0
# A channel whose spread is below this share of the output's widest is constant at float32
# resolution (MiniLM's embedding has three such dimensions, spread 1e-31 to 4e-8 against 0.4):
# quantization noise is all its cosine could measure.
CONSTANT_SHARE = 1e-5


@dataclasses.dataclass(frozen=True, slots=True)
class PartScore:
    """Mean and worst per-item cosine to FP32 of one output or one channel group of it."""

    label: str
    output: str
    channels: tuple[int, ...] | None
    axis: int | None
    fp32_spread: float
    mean_cosine: float
    min_cosine: float


class _AxisSums:
    """Per-item, per-channel sums along one candidate channel axis."""

    def __init__(self, axis: int, size: int) -> None:
        self.axis, self.size = axis, size
        self.dot: list[np.ndarray] = []
        self.rr: list[np.ndarray] = []
        self.cc: list[np.ndarray] = []
        self.low = np.full(size, np.inf)
        self.high = np.full(size, -np.inf)

    def add(self, r: np.ndarray, c: np.ndarray) -> None:
        others = tuple(a for a in range(1, r.ndim) if a != self.axis)
        self.dot.append((r * c).sum(axis=others))
        self.rr.append((r * r).sum(axis=others))
        self.cc.append((c * c).sum(axis=others))
        self.low = np.minimum(self.low, r.min(axis=(0, *others)))
        self.high = np.maximum(self.high, r.max(axis=(0, *others)))


def spread_groups(spreads: np.ndarray, ratio: float = GROUP_RATIO) -> list[np.ndarray]:
    """Channel indices grouped so that spreads within a group differ by at most ``ratio``.

    Constant channels (see :data:`CONSTANT_SHARE`) belong to no group: their cosine says
    nothing. One group means the output is of one scale and needs no parts.
    """
    widest = float(spreads.max(initial=0.0))
    live = np.flatnonzero(spreads > CONSTANT_SHARE * widest)
    order = live[np.argsort(spreads[live], kind="stable")]
    groups: list[list[int]] = []
    for channel in order:
        if groups and spreads[channel] <= ratio * spreads[groups[-1][0]]:
            groups[-1].append(int(channel))
        else:
            groups.append([int(channel)])
    return [np.array(sorted(g)) for g in groups]


def channel_label(channels: np.ndarray) -> str:
    """``0-3,7`` for channels 0, 1, 2, 3 and 7."""
    runs, start = [], int(channels[0])
    for prev, cur in zip(channels[:-1], channels[1:], strict=True):
        if cur != prev + 1:
            runs.append(f"{start}-{prev}" if prev != start else f"{start}")
            start = int(cur)
    last = int(channels[-1])
    runs.append(f"{start}-{last}" if last != start else f"{start}")
    return ",".join(runs)


class OutputParts:
    """Streams one output's FP32 and candidate batches; scores it whole and per channel group.

    The channel axis is axis 1 or the last axis, whichever keeps one size over every batch (a
    sequence axis does not) and is shorter than every other axis that does: ``[N, 4+C, A]`` and
    ``[N, A, 4+C]`` heads both give ``4+C`` channels, NCHW maps their ``C``, and a one-channel
    map ``[N, 1, H, W]`` none (its columns are no channels).
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._axes: dict[int, _AxisSums] | None = None
        self._sizes: dict[int, set[int]] = {}
        self._whole: list[np.ndarray] = []

    def add(self, ref: np.ndarray, cand: np.ndarray) -> None:
        """One batch of both models' values of this output."""
        r, c = ref.astype(np.float64, copy=False), cand.astype(np.float64, copy=False)
        if r.ndim < 2:
            r, c = r.reshape(len(r), 1), c.reshape(len(c), 1)
        if self._axes is None:
            self._axes = {a: _AxisSums(a, r.shape[a]) for a in {1, r.ndim - 1}
                          if r.shape[a] >= 2}
        for axis in range(1, r.ndim):
            self._sizes.setdefault(axis, set()).add(r.shape[axis])
        for axis, sums in list(self._axes.items()):
            if axis >= r.ndim or r.shape[axis] != sums.size:
                del self._axes[axis]  # a length that varies is no channel axis
            else:
                sums.add(r, c)
        flat_r, flat_c = r.reshape(len(r), -1), c.reshape(len(c), -1)
        self._whole.append(_cosine((flat_r * flat_c).sum(1), (flat_r ** 2).sum(1),
                                   (flat_c ** 2).sum(1)))

    def scores(self) -> list[PartScore]:
        """The whole output first, then each channel group when there are several."""
        whole = np.concatenate(self._whole)
        found = [PartScore(self.name, self.name, None, None, float("nan"),
                           float(whole.mean()), float(whole.min()))]
        fixed = {a: next(iter(n)) for a, n in self._sizes.items() if len(n) == 1}
        axes = [s for s in (self._axes or {}).values()
                if all(s.size < size for b, size in fixed.items() if b != s.axis)]
        if not axes:
            return found
        sums = min(axes, key=lambda s: (s.size, s.axis != 1))
        spreads = sums.high - sums.low
        groups = spread_groups(spreads)
        if len(groups) < 2:
            return found
        dot, rr, cc = (np.concatenate(x) for x in (sums.dot, sums.rr, sums.cc))
        for g in groups:
            cos = _cosine(dot[:, g].sum(1), rr[:, g].sum(1), cc[:, g].sum(1))
            found.append(PartScore(f"{self.name}[{channel_label(g)}]", self.name,
                                   tuple(int(i) for i in g), sums.axis,
                                   float(spreads[g].max()), float(cos.mean()),
                                   float(cos.min())))
        return found


def _cosine(dot: np.ndarray, rr: np.ndarray, cc: np.ndarray) -> np.ndarray:
    """Per-item cosine from its sums; two all-zero items agree (as ``row_cosine`` says)."""
    denom = np.sqrt(rr * cc)
    cosine = dot / np.maximum(denom, 1e-12)
    return np.where((rr == 0) & (cc == 0), 1.0, cosine)
