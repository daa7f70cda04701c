"""One stream through a model that carries state from call to call.

A streaming model (a voice-activity detector, a keyword spotter) is called chunk by chunk;
its state outputs must be fed back as the next call's state inputs and its constants given
every time. A :class:`StreamSession` does both, so a caller passes only the chunk. Calibration
(FP32 activations as the model really sees them), scoring (FP32 and a candidate, each with
its own state) and the runtime (``Model.open_stream()``) all step through this one class.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from frugalml.errors import InputError
from frugalml.runtime.roles import InputRoles, Signature, items_in

Run = Callable[[Mapping[str, np.ndarray]], Mapping[str, np.ndarray]]


class StreamSession:
    """Steps of one stream (or of ``batch`` streams side by side); not shared by threads:
    open one session per stream, many from one model."""

    def __init__(self, run: Run, roles: InputRoles, signature: Signature) -> None:
        self._run, self.roles, self._signature = run, roles, tuple(signature)
        self._constants = roles.constant_feeds(signature)
        self._state: dict[str, np.ndarray] | None = None
        self.steps = 0

    @property
    def state(self) -> dict[str, np.ndarray] | None:
        """The state the next step is fed (None before the first step)."""
        return None if self._state is None else dict(self._state)

    def feeds(self, chunk: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """What the next step runs on: the constants, the carried state (zeros at a stream's
        start), and the chunk (a state given in it replaces the carried one).

        Raises:
            InputError: a constant is given (it is fixed for the deployment), or the chunk's
                batch differs from the stream's so far (call :meth:`reset` first).
        """
        fixed = sorted(set(chunk) & set(self._constants))
        if fixed:
            raise InputError(f"Inputs {fixed} are constants of this deployment "
                             f"({', '.join(f'{n}={self.roles.constants[n]}' for n in fixed)}); "
                             "leave them out of the chunk.")
        batch = items_in(chunk, self.roles)
        if self._state is None:
            self._state = self.roles.zero_states(self._signature, batch)
        held = items_in(self._state, self.roles) if self._state else batch
        if held != batch and not set(chunk) & set(self.roles.states):
            raise InputError(f"This stream carries state for {held} item(s) but the chunk holds "
                             f"{batch}; call reset() before a stream of another batch size.")
        return {**self._constants, **self._state, **chunk}

    def step(self, chunk: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one chunk (the data inputs) and keep the state outputs for the next step.

        Raises:
            InputError: see :meth:`feeds`.
        """
        outputs = dict(self._run(self.feeds(chunk)))
        self._state = {i: outputs[o] for i, o in self.roles.states.items()}
        self.steps += 1
        return outputs

    def reset(self) -> None:
        """Start a new stream: zero state on the next step."""
        self._state, self.steps = None, 0


# Constant names read as a sample rate (Hz) when a step's audio duration is not given.
RATE_NAMES = ("sr", "sample_rate", "sampling_rate")


def chunk_seconds(roles: InputRoles, signature: Signature,
                  samples: Mapping[str, np.ndarray]) -> float | None:
    """Seconds of audio in one step: the one float data input's values per item over a
    sample-rate constant (``sr``, ``sample_rate``); None when that cannot be read. A chunk
    that repeats context from the last one (64 of 576 samples) counts it too: give the
    duration itself where that matters."""
    rate = next((float(roles.constants[n]) for n in RATE_NAMES if n in roles.constants), None)
    floats = [n for n, d, _ in signature if d.startswith("float")
              and n in roles.data_inputs(signature)]
    if not rate or len(floats) != 1:
        return None
    array = samples[floats[0]]
    return array.size / array.shape[roles.axis(floats[0])] / rate


def replay(stream: StreamSession, feeds: Mapping[str, np.ndarray],
           expected: Mapping[str, np.ndarray]) -> list[tuple[dict[str, np.ndarray],
                                                              dict[str, np.ndarray]]]:
    """Step ``stream`` over the items of sample ``feeds`` and pair each step's outputs with
    the item's ``expected`` ones. Where an item's state input is the previous item's expected
    state output (the samples are consecutive steps of one stream), the state comes from the
    session's own feedback; elsewhere the item's state is given. So a bundle's samples check
    the path a deployed stream takes, state fed back, not only single calls."""
    roles = stream.roles
    items = items_in(feeds, roles)
    data = [n for n in feeds if n not in roles.constants]

    def item(arrays: Mapping[str, np.ndarray], i: int, names: list[str]) -> dict[str, np.ndarray]:
        return {n: np.take(arrays[n], [i], axis=_axis(n, roles)) for n in names}

    pairs = []
    for i in range(items):
        chunk = item(feeds, i, data)
        chained = i > 0 and all(
            np.allclose(chunk[s], item(expected, i - 1, [o])[o], atol=1e-6)
            for s, o in roles.states.items())
        if chained:
            chunk = {n: v for n, v in chunk.items() if n not in roles.states}
        pairs.append((stream.step(chunk), item(expected, i, list(expected))))
    return pairs


def _axis(name: str, roles: InputRoles) -> int:
    """The batch axis of an input, or of an output that feeds a state (its state's)."""
    fed = {o: i for i, o in roles.states.items()}
    return roles.axis(fed.get(name, name))
