"""A verified bundle ready to run: input checking in front of one backend session."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from frugalml.errors import BundleError, InputError
from frugalml.runtime.backends import Session
from frugalml.runtime.manifest import Manifest, TensorSpec
from frugalml.runtime.numerics import max_abs_error, row_cosine


def _check_input(spec: TensorSpec, value: object) -> None:
    """Raise InputError naming the input, what it got and what to pass instead."""
    if not isinstance(value, np.ndarray):
        raise InputError(
            f"Input {spec.name!r} is a {type(value).__name__}; pass a numpy array "
            f"of dtype {spec.dtype}."
        )
    if value.ndim != len(spec.shape):
        raise InputError(
            f"Input {spec.name!r} has shape {tuple(value.shape)} ({value.ndim}-D); the model "
            f"expects {len(spec.shape)}-D {_shape_text(spec.shape)}."
        )
    for axis, (want, got) in enumerate(zip(spec.shape, value.shape, strict=True)):
        if isinstance(want, int) and want > 0 and want != got:
            raise InputError(
                f"Input {spec.name!r} has shape {tuple(value.shape)}; the model expects "
                f"{_shape_text(spec.shape)} (axis {axis} must be {want})."
            )
    if str(value.dtype) != spec.dtype:
        raise InputError(
            f"Input {spec.name!r} has dtype {value.dtype}; the model expects {spec.dtype}. "
            f"Convert with `.astype(np.{spec.dtype})`."
        )


def _shape_text(shape: tuple[int | str, ...]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")"


class Model:
    """A loaded bundle; call :meth:`run` with numpy arrays keyed by input name."""

    def __init__(self, bundle_dir: Path, manifest: Manifest, session: Session) -> None:
        self.bundle_dir = bundle_dir
        self.manifest = manifest
        self._session = session

    @property
    def input_names(self) -> tuple[str, ...]:
        """Names the model expects, in signature order."""
        return tuple(spec.name for spec in self.manifest.inputs)

    def check_inputs(self, feeds: Mapping[str, object]) -> None:
        """Validate names, ranks, fixed dimensions and dtypes before anything runs.

        Raises:
            InputError: a name is missing or unknown, or a shape or dtype is wrong.
        """
        expected = set(self.input_names)
        unknown = sorted(set(feeds) - expected)
        missing = sorted(expected - set(feeds))
        if unknown or missing:
            raise InputError(
                f"Inputs {sorted(feeds)} do not match the model's inputs {list(self.input_names)}"
                + (f"; unknown: {unknown}" if unknown else "")
                + (f"; missing: {missing}" if missing else "")
                + "."
            )
        for spec in self.manifest.inputs:
            _check_input(spec, feeds[spec.name])

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Validate ``feeds`` and run once; returns every output by name.

        Raises:
            InputError: see :meth:`check_inputs`.
        """
        self.check_inputs(feeds)
        return self._session.run(feeds)

    def self_check(self) -> dict[str, float]:
        """Run the bundled sample inputs and compare with the outputs recorded at build time.

        Returns:
            The worst cosine and max abs error over all outputs.

        Raises:
            BundleError: an output drifts beyond the manifest's tolerance.
        """
        with np.load(self.bundle_dir / self.manifest.samples_file, allow_pickle=False) as data:
            feeds = {spec.name: data[f"input.{spec.name}"] for spec in self.manifest.inputs}
            expected = {spec.name: data[f"output.{spec.name}"] for spec in self.manifest.outputs}
        got = self.run(feeds)
        worst_cos, worst_abs = 1.0, 0.0
        for name, ref in expected.items():
            worst_cos = min(worst_cos, float(row_cosine(ref, got[name]).min()))
            worst_abs = max(worst_abs, max_abs_error(ref, got[name]))
        tol = self.manifest.sample_tolerance
        if worst_cos < tol["min_cosine"] or worst_abs > tol["max_abs"]:
            raise BundleError(
                f"Bundle {self.manifest.name!r} reproduces its samples with cosine {worst_cos:.5f} "
                f"and max abs error {worst_abs:.3g}; the manifest allows cosine >= "
                f"{tol['min_cosine']} and max abs <= {tol['max_abs']}. The backend or host "
                "computes differently from the build machine."
            )
        return {"min_cosine": worst_cos, "max_abs_error": worst_abs}
