"""Inputs for benchmarking: a different real input on every run, never one pre-filled tensor.

Reusing one input lets caches and branch predictors learn it and flatters the numbers; apps
see a new input every call. Inputs come from the bundle's own samples, from an .npz of real
data (e.g. a calibration set), or, when asked, synthetic values shaped like the samples.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from frugalml.errors import InputError
from frugalml.runtime.model import Model

SYNTHETIC_COUNT = 32


def bench_feeds(model: Model, source: str | Path = "samples", *, batch: int = 1,
                seed: int = 0) -> list[dict[str, np.ndarray]]:
    """Distinct feed dicts of ``batch`` items, cycled through by the profiler.

    ``source``: ``"samples"`` (the bundle's), ``"synthetic"`` (random, shaped and ranged like
    the samples), or a path to an ``.npz`` of arrays named like the inputs.

    Raises:
        InputError: the .npz cannot be read, lacks inputs, or has fewer items than ``batch``.
    """
    samples = sample_arrays(model)
    if source == "synthetic":
        arrays = _synthetic(samples, seed)
    elif source == "samples":
        arrays = samples
    else:
        arrays = _load_npz(Path(source), "")
        missing = [n for n in model.input_names if n not in arrays]
        if missing:
            raise InputError(f"{source} lacks inputs {missing}; the model takes "
                             f"{list(model.input_names)}.")
    items = min(len(arrays[n]) for n in model.input_names)
    if items < batch:
        raise InputError(f"{source} holds {items} items; a batch of {batch} needs more.")
    return [{n: np.ascontiguousarray(arrays[n][i:i + batch]) for n in model.input_names}
            for i in range(0, items - batch + 1, batch)]


def sample_arrays(model: Model) -> dict[str, np.ndarray]:
    """Every sample input of a bundle, by input name (real items from its evaluation data).

    Raises:
        InputError: the samples file cannot be read.
    """
    return _load_npz(model.bundle_dir / model.manifest.samples_file, "input.")


def _load_npz(path: Path, prefix: str) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k.removeprefix(prefix): data[k] for k in data.files if k.startswith(prefix)}
    except (OSError, ValueError) as e:
        raise InputError(f"Cannot read benchmark inputs from {path}: {e}. Pass an .npz of "
                         "arrays named like the model's inputs.") from e


def _synthetic(samples: dict[str, np.ndarray], seed: int) -> dict[str, np.ndarray]:
    """Random arrays with the samples' shapes, dtypes and value ranges (masks stay masks)."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, ref in samples.items():
        shape = (SYNTHETIC_COUNT, *ref.shape[1:])
        if np.issubdtype(ref.dtype, np.integer) or ref.dtype == np.bool_:
            low, high = int(ref.min()), int(ref.max())
            out[name] = rng.integers(low, high + 1, size=shape).astype(ref.dtype)
        else:
            out[name] = rng.normal(float(ref.mean()), float(ref.std()) or 1.0,
                                   size=shape).astype(ref.dtype)
    return out
