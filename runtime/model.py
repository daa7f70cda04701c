"""A verified bundle ready to run: input checking in front of one backend session."""

from __future__ import annotations

import functools
import threading
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from frugalml.errors import BundleError, InputError
from frugalml.runtime.backends import Session
from frugalml.runtime.generate import (
    Cache,
    CopiedCache,
    DecoderLayout,
    Generation,
    Sampling,
    TextStream,
    Token,
    decode,
)
from frugalml.runtime.manifest import Manifest, TensorSpec
from frugalml.runtime.numerics import max_abs_error, row_cosine
from frugalml.runtime.prompt import encode_prompt
from frugalml.runtime.roles import InputRoles
from frugalml.runtime.stream import StreamSession, replay


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
            f"expects {len(spec.shape)}-D {_shape_text(spec.shape)}. Reshape it (one item "
            "still needs the leading batch axis: array[None])."
        )
    for axis, (want, got) in enumerate(zip(spec.shape, value.shape, strict=True)):
        if isinstance(want, int) and want > 0 and want != got:
            raise InputError(
                f"Input {spec.name!r} has shape {tuple(value.shape)}; the model expects "
                f"{_shape_text(spec.shape)} (axis {axis} must be {want})."
            )
    if value.dtype != _numpy_dtype(spec.dtype):
        raise InputError(
            f"Input {spec.name!r} has dtype {value.dtype}; the model expects {spec.dtype}. "
            f"Convert with `.astype(np.{spec.dtype})`."
        )


@functools.lru_cache(maxsize=64)
def _numpy_dtype(name: str) -> np.dtype | None:
    """The manifest's dtype name as a numpy dtype, once per name (None for a name numpy does
    not know: no array matches it): comparing dtype objects instead of ``str(value.dtype)``
    saved 8 of the wrapper's ~25 us a call (MNIST, 0.07 ms a run)."""
    try:
        return np.dtype(name)
    except TypeError:
        return None


def _shape_text(shape: tuple[int | str, ...]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")"


def _describe(feeds: Mapping[str, np.ndarray]) -> str:
    return ", ".join(f"{k}: {v.dtype}{tuple(v.shape)}" for k, v in feeds.items())


def _signature(specs: tuple[TensorSpec, ...]) -> str:
    return ", ".join(f"{s.name}: {s.dtype}{_shape_text(s.shape)}" for s in specs)


class Model:
    """A loaded bundle; call :meth:`run` with numpy arrays keyed by input name.

    ``run`` may be called from many threads at once. NaN and Inf inputs are passed to the
    backend unchanged (checking every element would cost more than small models take to run);
    they come back as NaN outputs. Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, bundle_dir: Path, manifest: Manifest, session: Session, *,
                 backend: str, load_ms: dict[str, float] | None = None) -> None:
        self.bundle_dir = bundle_dir
        self.manifest = manifest
        self.backend = backend
        self.load_ms = dict(load_ms or {})
        self._session: Session | None = session
        self._input_names = tuple(spec.name for spec in manifest.inputs)
        self._input_set = frozenset(self._input_names)
        self._tokenizer: Any = None
        self._tokenizer_lock = threading.Lock()

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        """Input signature: name, dtype and shape (str dims are dynamic)."""
        return self.manifest.inputs

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        """Output signature."""
        return self.manifest.outputs

    @property
    def input_names(self) -> tuple[str, ...]:
        """Names the model expects, in signature order."""
        return self._input_names

    def check_inputs(self, feeds: Mapping[str, object]) -> None:
        """Validate names, ranks, fixed dimensions and dtypes before anything runs.

        Raises:
            InputError: a name is missing or unknown, or a shape or dtype is wrong.
        """
        if type(feeds) is dict and feeds.keys() == self._input_set:  # the common call, fast
            for spec in self.manifest.inputs:
                _check_input(spec, feeds[spec.name])
            return
        if not isinstance(feeds, Mapping):
            raise InputError(f"Inputs are a {type(feeds).__name__}; pass a dict of numpy arrays "
                             f"by input name: {_signature(self.manifest.inputs)}.")
        expected = set(self.input_names)
        unknown = sorted(map(str, set(feeds) - expected))
        missing = sorted(expected - set(feeds))
        if unknown or missing:
            raise InputError(
                f"Inputs {sorted(map(str, feeds))} do not match the model's inputs "
                f"{list(self.input_names)}"
                + (f"; unknown: {unknown}" if unknown else "")
                + (f"; missing: {missing}" if missing else "")
                + f". Expected signature: {_signature(self.manifest.inputs)}."
            )
        for spec in self.manifest.inputs:
            _check_input(spec, feeds[spec.name])

    def run(self, inputs: Mapping[str, np.ndarray] | np.ndarray) -> dict[str, np.ndarray]:
        """Validate ``inputs`` and run once; returns every output by name.

        ``inputs`` is a dict by input name, or one array for a single-input model.
        Non-contiguous arrays (slices, transposes) are copied to contiguous memory first.

        Raises:
            InputError: see :meth:`check_inputs`.
            BundleError: the model was closed.
        """
        if self._session is None:
            raise BundleError(f"Model {self.manifest.name!r} is closed; load the bundle again.")
        if isinstance(inputs, np.ndarray):
            if len(self.input_names) != 1:
                raise InputError(
                    f"A single array was given but the model has {len(self.input_names)} "
                    f"inputs; pass a dict: {_signature(self.manifest.inputs)}.")
            inputs = {self.input_names[0]: inputs}
        self.check_inputs(inputs)
        # np.require, not ascontiguousarray: that makes a 0-d input (a sample rate) 1-D
        feeds = {k: v if v.flags.c_contiguous else np.require(v, requirements="C")
                 for k, v in inputs.items()}
        try:
            return self._session.run(feeds)
        except Exception as e:  # backends raise untyped errors for values they cannot run
            raise InputError(
                f"{self.backend} could not run {self.manifest.name!r} on these inputs "
                f"({_describe(feeds)}): {str(e)[:400]}. The expected signature is "
                f"{_signature(self.manifest.inputs)}; check dynamic sizes and value ranges "
                "(token ids within the vocabulary, lengths within the model's limit)."
            ) from e

    @property
    def roles(self) -> InputRoles:
        """The inputs' roles (batch axes, constants, states); empty for a batch-first model."""
        return InputRoles.from_dict(self.manifest.roles or {})

    def open_stream(self) -> StreamSession:
        """A session for one stream of a model that carries state: ``s.step(chunk)`` feeds the
        constants and the previous step's state itself, ``s.reset()`` starts a new stream.
        Open one per stream; many may run on one model from many threads."""
        signature = [(s.name, s.dtype, s.shape) for s in self.manifest.inputs]
        return StreamSession(self.run, self.roles, signature)

    @property
    def generation(self) -> DecoderLayout | None:
        """The KV-cache layout of a decoder bundle; None for other models."""
        section = self.manifest.generation
        return None if section is None else DecoderLayout.from_dict(section)

    def tokenizer(self) -> Any:
        """The bundle's tokenizer (``tokenizers.Tokenizer``, from its hashed file).

        Raises:
            BundleError: the bundle is no decoder or carries no tokenizer.
            FrugalError: the ``tokenizers`` package (``runtime-text`` extra) is missing.
        """
        layout = self.decoder_layout()
        if layout.tokenizer_file is None:
            raise BundleError(f"Bundle {self.manifest.name!r} carries no tokenizer; pass "
                              "token ids instead of text.")
        with self._tokenizer_lock:
            if self._tokenizer is None:
                from frugalml.errors import require

                require("tokenizers", extra="runtime-text")
                from tokenizers import Tokenizer

                self._tokenizer = Tokenizer.from_file(
                    str(self.bundle_dir / layout.tokenizer_file))
        return self._tokenizer

    def stream(self, prompt: str | Sequence[int], sampling: Sampling | None = None,
               **options: Any) -> Iterator[Token]:
        """Generate from ``prompt`` (text, or token ids), yielding each token as it comes.

        ``options`` are :class:`~frugalml.runtime.generate.Sampling` fields
        (``max_new_tokens``, ``temperature``, ``top_k``, ``top_p``, ``seed``,
        ``stop_token_ids``). Safe to call from many threads at once on one Model.

        Raises:
            InputError: bad sampling options, an empty prompt, or one longer than the model's
                position limit; BundleError: not a decoder bundle, or the model was closed.
        """
        layout = self.decoder_layout()
        sampling = sampling or Sampling(**options)
        text = isinstance(prompt, str)
        ids = encode_prompt(self.tokenizer(), prompt) if text else [int(t) for t in prompt]
        pieces = TextStream(self.tokenizer()) if layout.tokenizer_file else None
        for token, seconds in decode(self._cache_for(layout), layout, ids, sampling):
            yield Token(token, pieces.add(token) if pieces else "", seconds)

    def generate(self, prompt: str | Sequence[int], sampling: Sampling | None = None,
                 **options: Any) -> Generation:
        """Generate from ``prompt`` to a stop token or the token limit (see :meth:`stream`)."""
        sampling = sampling or Sampling(**options)
        prompt_tokens = (len(encode_prompt(self.tokenizer(), prompt)) if isinstance(prompt, str)
                         else len(prompt))
        tokens = list(self.stream(prompt, sampling))
        layout = self.decoder_layout()
        limit = min(sampling.max_new_tokens, layout.max_positions - prompt_tokens)
        text = (self.tokenizer().decode([t.id for t in tokens], skip_special_tokens=True)
                if layout.tokenizer_file else "")
        return Generation(text=text,
                          token_ids=tuple(t.id for t in tokens), prompt_tokens=prompt_tokens,
                          finish="length" if len(tokens) >= limit else "stop",
                          step_seconds=tuple(t.seconds for t in tokens))

    def decoder_layout(self) -> DecoderLayout:
        """The KV-cache layout; raises BundleError when the bundle is no decoder."""
        layout = self.generation
        if layout is None:
            raise BundleError(f"Bundle {self.manifest.name!r} is not a decoder with a KV "
                              "cache; only such bundles generate. Export the language model "
                              "with its cache (`frugal deploy` does for a decoder).")
        return layout

    def _cache_for(self, layout: DecoderLayout) -> Callable[[int], Cache]:
        """How each generation keeps its cache: in place where the graph and the backend
        allow it (no copy per step), else as the graph returns it."""
        shared = getattr(self.session, "shared_cache", None)
        if layout.shared_buffer and shared is not None:
            return lambda positions: shared(layout, positions)
        return lambda positions: CopiedCache(self._step, layout)

    def _step(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One decode step: the feeds are built by the loop, so only the session is checked."""
        if self._session is None:
            raise BundleError(f"Model {self.manifest.name!r} is closed; load the bundle again.")
        return self._session.run(feeds)

    @property
    def inference_precision(self) -> str | None:
        """The float precision the backend computes in, read back from it (``fp32``, ``bf16``,
        ``fp16``; None for ONNX Runtime, which runs each op in its graph's types)."""
        return self.session.inference_precision

    def close(self) -> None:
        """Release the backend session; later calls to :meth:`run` raise ``BundleError``."""
        if self._session is not None:
            self._session.close()
            self._session = None

    def __enter__(self) -> Model:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def session(self) -> Session:
        """The backend session (for the profiler's per-op view)."""
        if self._session is None:
            raise BundleError(f"Model {self.manifest.name!r} is closed.")
        return self._session

    def self_check(self) -> dict[str, float]:
        """Run the bundled sample inputs and compare with the outputs recorded at build time;
        a model that carries state also runs them as a stream (:func:`replay`).

        Returns:
            The worst cosine and max abs error over all outputs.

        Raises:
            BundleError: an output drifts beyond the manifest's tolerance.
        """
        feeds, expected = self._samples()
        pairs = [(self.run(feeds), expected)]
        if self.roles.states:  # and step by step, the state fed back where samples chain
            pairs += replay(self.open_stream(), feeds, expected)
        worst_cos, worst_abs = 1.0, 0.0
        for got, want in pairs:
            for name, ref in want.items():
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

    def _samples(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Sample inputs and expected outputs, read as plain arrays (never unpickled)."""
        path = self.bundle_dir / self.manifest.samples_file
        try:
            with np.load(path, allow_pickle=False) as data:
                return ({s.name: data[f"input.{s.name}"] for s in self.manifest.inputs},
                        {s.name: data[f"output.{s.name}"] for s in self.manifest.outputs})
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
            why = ("it holds Python objects, which frugalml never unpickles"
                   if "allow_pickle" in str(e) else str(e).rstrip("."))
            raise BundleError(f"Cannot read the bundle's samples from {path}: {why}. Rebuild "
                              "the bundle with `frugal deploy`.") from e
