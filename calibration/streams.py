"""Streams as data: sequences of chunks for a model that carries state, split by stream.

A ``.npz`` holds one array per data input (the inputs that are neither constant nor state),
shaped ``[streams, steps, *chunk]`` where ``chunk`` is one item's chunk without its batch
axis. A model with no state takes ``[items, *item]`` (each item a stream of one step). The
input roles (:class:`~frugalml.runtime.roles.InputRoles`) come from the flags and, if the file
has one, a ``__roles__`` entry holding their JSON (flags win).

Streams are the items: the split and the fingerprint work on whole streams, so no evaluation
stream shares a chunk with calibration. Calibration items are steps as FP32 really sees
them: each calibration stream is run through the FP32 model carrying its state, and each
step's feeds (chunk, constants, the state FP32 carried there) are one item.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from frugalml.calibration.arrays import ArraySource, load_arrays
from frugalml.calibration.audio import RecordingStreams
from frugalml.calibration.dataset import CalibrationSet, make_set
from frugalml.core.records import digest
from frugalml.errors import CalibrationError, InputError
from frugalml.runtime.backends import backend_for, get_backend
from frugalml.runtime.formats import is_onnx
from frugalml.runtime.manifest import onnx_dtype
from frugalml.runtime.roles import InputRoles, Signature, resolve_roles
from frugalml.runtime.stream import StreamSession

ROLES_KEY = "__roles__"


class StreamSource(ArraySource):
    """Named arrays whose leading axis is the stream; ``steps`` chunks per stream."""

    kind = "streams"

    def __init__(self, source: ArraySource, *, stateful: bool,
                 states: frozenset[str] = frozenset()) -> None:
        """Read ``source``'s arrays as streams (``stateful``) or as one-step streams. An array
        named after a state input (in ``states``) is each stream's initial state,
        ``[streams, *state]`` with the state's batch axis left out, not a chunk per step.

        Raises:
            CalibrationError: a stream array without a step axis, or arrays with different
                step counts.
        """
        arrays = source.arrays
        self.initial = frozenset(states & set(arrays))
        if stateful:
            chunked = {n: a for n, a in arrays.items() if n not in self.initial}
            flat = sorted(n for n, a in chunked.items() if a.ndim < 2)
            if flat or not chunked:
                raise CalibrationError(f"Arrays {flat} of {source.origin} have no step axis: a "
                                       "stream set holds [streams, steps, *chunk] per data "
                                       "input (and [streams, *state] per initial state).")
            steps = {n: a.shape[1] for n, a in chunked.items()}
            if len(set(steps.values())) != 1:
                raise CalibrationError(f"The streams of {source.origin} have different step "
                                       f"counts per input {steps}; every input needs one chunk "
                                       "per step.")
        else:
            arrays = {n: a[:, None] for n, a in arrays.items()}
        super().__init__(arrays, origin=source.origin)
        self.steps = next(a for n, a in arrays.items() if n not in self.initial).shape[1]

    def chunks(self) -> dict[str, tuple[str, tuple[int, ...]]]:
        """Each data input's dtype and chunk shape, and each initial state's dtype and shape
        (without the batch axis)."""
        return {n: (str(a.dtype), tuple(a.shape[1 if n in self.initial else 2:]))
                for n, a in self.arrays.items()}

    def describe(self) -> dict[str, Any]:
        """Origin, steps per stream, each input's dtype and chunk shape, the initial states."""
        chunks = self.chunks()
        return {"path": self.origin, "steps": self.steps,
                "inputs": {n: [d, list(s)] for n, (d, s) in chunks.items()
                           if n not in self.initial},
                **({"initial_states": {n: [d, list(s)] for n, (d, s) in chunks.items()
                                       if n in self.initial}} if self.initial else {})}


def read_streams(path: Path, roles: InputRoles) -> tuple[StreamSource, InputRoles]:
    """The streams in ``path`` and the roles (the file's ``__roles__`` under ``roles``).

    Raises:
        CalibrationError: the file cannot be read or holds no streams; InputError: its
            ``__roles__`` entry is malformed.
    """
    path = Path(path)
    if path.suffix != ".npz":
        raise CalibrationError(f"Stream data {path} must be an .npz of [streams, steps, *chunk] "
                               "arrays, one per data input.")
    arrays = load_arrays(path)
    file_roles = arrays.pop(ROLES_KEY, None)
    if file_roles is not None:
        try:
            stored = InputRoles.from_dict(json.loads(str(file_roles)))
        except ValueError as e:
            raise InputError(f"The {ROLES_KEY} entry of {path} is not roles JSON: {e}.") from e
        roles = InputRoles(batch_axes={**stored.batch_axes, **roles.batch_axes},
                           constants={**stored.constants, **roles.constants},
                           states={**stored.states, **roles.states})
    return StreamSource(ArraySource(arrays, origin=str(path)), stateful=bool(roles.states),
                        states=frozenset(roles.states)), roles


def has_roles(path: Path) -> bool:
    """An .npz that carries its input roles (a ``__roles__`` entry)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return ROLES_KEY in data.files
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return False  # read_arrays says what is wrong with the file


class StreamSet:
    """A stream source split by stream, with the model's input roles and its FP32 file."""

    def __init__(self, base: CalibrationSet, roles: InputRoles, model: Path,
                 signature: Signature, outputs: Sequence[str], *, threshold: float = 0.5,
                 decision: str | None = None, split_rule: str | None = None) -> None:
        """Check the roles and the chunks against the model before any work. ``threshold``
        turns the ``decision`` output (default: the one output with one value per item) into
        the per-step decision scoring compares.

        Raises:
            InputError: a role does not fit the model, or ``decision`` is not an output;
                CalibrationError: a chunk does not fit.
        """
        if decision is not None and decision not in outputs:
            raise InputError(f"--decision {decision!r} is not an output of the model (outputs: "
                             f"{', '.join(outputs)}).")
        self.base, self.model = base, Path(model)
        self.threshold, self.decision = float(threshold), decision
        self._rule = split_rule or base.split_rule
        self.signature = tuple(signature)
        self.roles = resolve_roles(roles, signature, outputs)
        self.check_inputs(signature)
        self._model_digest = hashlib.sha256(self.model.read_bytes()).hexdigest()

    @property
    def source(self) -> StreamSource | RecordingStreams:
        """The streams."""
        return self.base.source  # type: ignore[return-value]

    @property
    def split(self) -> Any:
        """Stream indices of each part."""
        return self.base.split

    @property
    def split_rule(self) -> str:
        """How the streams were split (the descriptor's rule; a size counts steps)."""
        return self._rule

    @property
    def salt(self) -> str:
        """The split's salt."""
        return self.base.salt

    @property
    def fingerprint(self) -> str:
        """The streams' set fingerprint, the roles, the FP32 model that carries the
        calibration states, and the decision scoring reads (a cached score is a score of
        this threshold)."""
        return digest("stream-set", self.base.fingerprint, self.roles.to_dict(),
                      self._model_digest, self.threshold, self.decision)

    def part_fingerprint(self, part: str) -> str:
        """Hash of the stream identities of one part."""
        return self.base.part_fingerprint(part)

    def summary(self) -> dict[str, Any]:
        """The base summary (items are streams) with the roles and steps per stream."""
        return {**self.base.summary(), "fingerprint": self.fingerprint, "split": self._rule,
                "roles": self.roles.to_dict(), "steps_per_stream": self.source.steps,
                "threshold": self.threshold, "decision": self.decision}

    def boxes(self, part: str) -> None:
        """Streams have no labelled boxes."""
        return None

    def streams(self, part: str, limit: int | None = None
                ) -> Iterator[list[dict[str, np.ndarray]]]:
        """Each stream of ``part`` as its chunks, one item each (batch axis of size 1); a
        stream's initial state, where the data gives one, rides in its first chunk (a state in
        a chunk replaces the carried one: :meth:`StreamSession.feeds`)."""
        initial = getattr(self.source, "initial", frozenset())
        for arrays, _ in self.base.batches(part, batch_size=1, limit=limit):
            chunks = {n: a for n, a in arrays.items() if n not in initial}
            steps = next(iter(chunks.values())).shape[1]
            stream = [{n: np.expand_dims(a[0, t], self.roles.axis(n)) for n, a in chunks.items()}
                      for t in range(steps)]
            stream[0].update({n: np.expand_dims(arrays[n][0], self.roles.axis(n))
                              for n in initial})
            yield stream

    def batches(self, part: str, *, batch_size: int, limit: int | None = None,
                by_length: bool = False) -> Iterator[tuple[dict[str, np.ndarray], np.ndarray]]:
        """Steps of ``part``'s streams as FP32 runs them (chunk, constants, carried state),
        ``batch_size`` steps joined on their batch axes; ``limit`` counts steps. Steps keep
        their order (a stream's state carries from one to the next): ``by_length`` is
        accepted and changes nothing, every step has its chunk's one shape."""
        if batch_size < 1:
            raise CalibrationError(f"batch_size must be at least 1, got {batch_size}.")
        session = get_backend(backend_for(self.model)).open(self.model, threads=0)
        try:
            pending, given = [], 0
            for chunks in self.streams(part):
                stream = StreamSession(session.run, self.roles, self.signature)
                for chunk in chunks:
                    if limit is not None and given >= limit:
                        break
                    feeds = stream.feeds(chunk)
                    pending.append(feeds)
                    given += 1
                    stream.step(chunk)
                    if len(pending) == batch_size:
                        yield self.roles.stack(pending), np.full(batch_size, -1)
                        pending = []
            if pending:
                yield self.roles.stack(pending), np.full(len(pending), -1)
        finally:
            session.close()

    def check_inputs(self, signature: Signature) -> None:
        """Each data input's chunk (batch axis inserted) against the model's input.

        Raises:
            CalibrationError: an input is missing or extra, or a dtype or fixed dim differs.
        """
        expected = {n: (d, tuple(s)) for n, d, s in signature}
        initial = getattr(self.source, "initial", frozenset())
        wanted = set(self.roles.data_inputs(signature)) | set(initial)
        given = self.source.chunks()
        problems = [f"input {n!r} is missing from the streams (or give it with --constant / "
                    "--state)" for n in sorted(wanted - set(given))]
        problems += [f"the streams hold {n!r}, which the model takes as "
                     + ("a constant" if n in self.roles.constants else "a state"
                        if n in self.roles.states else "no input")
                     for n in sorted(set(given) - wanted)]
        for name in sorted(wanted & set(given)):
            (given_dtype, given_shape), (dtype, shape) = given[name], expected[name]
            chunk = list(given_shape)
            chunk.insert(self.roles.axis(name), 1)
            if given_dtype != dtype:
                problems.append(f"{name!r} is {given_dtype}, the model expects {dtype}")
            if len(chunk) != len(shape) or any(isinstance(w, int) and w > 0 and w != g
                                               for w, g in zip(shape, chunk, strict=False)):
                problems.append(
                    f"a stream's initial {name!r} is {tuple(given_shape)} (batch axis left "
                    f"out), the model's state is {shape}: give [streams, *state] per state"
                    if name in initial else f"a chunk of {name!r} is {tuple(chunk)} with its "
                    f"batch axis {self.roles.axis(name)}, the model expects {shape}")
        if problems:
            raise CalibrationError(
                "The streams do not fit the model: " + "; ".join(problems) + ". Stream arrays "
                "are [streams, steps, *chunk] with the chunk's batch axis left out; name a "
                "non-leading batch axis with --batch-axis NAME=AXIS.")


def stream_set(path: Path, roles: InputRoles, model: Path, *,
               calibration_size: int | None = None, calibration_fraction: float | None = None,
               salt: str = "frugalml", threshold: float = 0.5, decision: str | None = None,
               chunk: int | None = None, sample_rate: int | None = None) -> StreamSet:
    """Streams for the ONNX ``model``, split by stream: an .npz (see :func:`read_streams`), or
    a folder of recordings cut into ``chunk``-sample steps at ``sample_rate``
    (:class:`~frugalml.calibration.audio.RecordingStreams`). ``calibration_size`` counts
    steps, as a recipe's calibration items do: the calibration part is the fewest whole
    streams that hold that many (on average).

    Raises:
        CalibrationError: too few streams for that many steps and an evaluation part, or a
            folder without --chunk and --sample-rate; and see :func:`read_streams` and
            :class:`StreamSet`.
    """
    signature, outputs = model_io(Path(model))
    source = _recordings(Path(path), roles, signature, chunk, sample_rate) if Path(path).is_dir() \
        else None
    if source is None:
        source, roles = read_streams(path, roles)
    streams = None
    if calibration_size is not None:
        streams = int(np.ceil(calibration_size / source.steps))
        held = len(set(source.keys()))
        if calibration_size < 1 or streams >= held:
            raise CalibrationError(
                f"{calibration_size} calibration steps take {streams} streams of "
                f"{source.steps:g} steps, but {path} holds {held} distinct streams, leaving "
                "none to score on. Ask for fewer (--num counts steps), or add streams.")
    base = make_set(source, calibration_size=streams, calibration_fraction=calibration_fraction,
                    salt=salt)
    rule = base.split_rule if streams is None else base.split_rule.replace(
        f"size={streams},", f"size={calibration_size},")
    return StreamSet(base, roles, model, signature, outputs, threshold=threshold,
                     decision=decision, split_rule=rule)


def _recordings(folder: Path, roles: InputRoles, signature: Signature, chunk: int | None,
                sample_rate: int | None) -> RecordingStreams:
    """A folder of recordings for the model's one data input.

    Raises:
        CalibrationError: no --chunk / --sample-rate, or the model has not exactly one data
            input for the audio.
    """
    if not chunk or not sample_rate:
        raise CalibrationError(f"Recordings in {folder} are cut into steps: give --chunk N "
                               "(samples per step) and --sample-rate R.")
    inputs = roles.data_inputs(signature)
    if len(inputs) != 1:
        raise CalibrationError(f"Recordings feed one input, but the model takes {inputs} besides "
                               "its constants and state; give the streams as an .npz instead.")
    return RecordingStreams(folder, input_name=inputs[0], chunk=chunk, sample_rate=sample_rate)


def model_io(model: Path) -> tuple[list[tuple[str, str, tuple[Any, ...]]], list[str]]:
    """(name, numpy dtype, shape) of an ONNX model's inputs, and its output names.

    Raises:
        CalibrationError: ``model`` is not an ONNX file.
    """
    if not is_onnx(model) or not model.is_file():
        raise CalibrationError(f"Stream data needs the model as an .onnx file; {model} is not "
                               "one. Export it first (frugal export).")
    import onnxruntime as ort

    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    return ([(i.name, onnx_dtype(i.type), tuple(i.shape)) for i in session.get_inputs()],
            [o.name for o in session.get_outputs()])
