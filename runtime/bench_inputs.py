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
from frugalml.runtime.roles import InputRoles

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
        arrays = _synthetic(samples, seed, model.roles)
    elif source == "samples":
        arrays = samples
    else:
        arrays = _load_npz(Path(source), "")
        missing = [n for n in model.input_names if n not in arrays]
        if missing:
            raise InputError(f"{source} lacks inputs {missing}; the model takes "
                             f"{list(model.input_names)}.")
    roles = model.roles
    batched = [n for n in model.input_names if n not in roles.constants]
    items = min((arrays[n].shape[roles.axis(n)] for n in batched), default=1)
    if items < batch:
        raise InputError(f"{source} holds {items} items; a batch of {batch} needs more.")
    return [{n: np.require(arrays[n] if n in roles.constants else
                               np.take(arrays[n], range(i, i + batch), axis=roles.axis(n)),
                               requirements="C")
             for n in model.input_names}
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


def _synthetic(samples: dict[str, np.ndarray], seed: int, roles: InputRoles
               ) -> dict[str, np.ndarray]:
    """Random arrays with the samples' shapes, dtypes and value ranges (masks stay masks;
    constants stay the deployment's)."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, ref in samples.items():
        if name in roles.constants:
            out[name] = ref
            continue
        shape = list(ref.shape)
        shape[roles.axis(name)] = SYNTHETIC_COUNT
        if np.issubdtype(ref.dtype, np.integer) or ref.dtype == np.bool_:
            low, high = int(ref.min()), int(ref.max())
            out[name] = rng.integers(low, high + 1, size=shape).astype(ref.dtype)
        else:
            out[name] = rng.normal(float(ref.mean()), float(ref.std()) or 1.0,
                                   size=shape).astype(ref.dtype)
    return out
