"""What each input of a model is, when the model is not "a batch of items in, outputs out".

Streaming edge models (voice-activity detectors, keyword spotters, trackers) run chunk by
chunk: a state input is fed from an output of the previous call (``state`` <- ``stateN``),
some inputs are fixed for a deployment (a sample rate, a flag), and a state's batch axis is
often not the first (``[2, batch, 128]``). One record says so; calibration, scoring, the
bundle's manifest and the runtime's stream session all read it, so every stage feeds the
model the same way.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from frugalml.errors import InputError

Signature = Sequence[tuple[str, str, tuple[Any, ...]]]  # (name, numpy dtype, shape)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class InputRoles:
    """Roles of a model's inputs; an input named nowhere is batched on axis 0.

    - ``batch_axes``: a batched input's batch axis where it is not 0 (states: read from the
      model's dims by :func:`resolve_roles` when not given).
    - ``constants``: inputs fixed for the deployment, as JSON values (``16000``, ``[1, 0]``).
    - ``states``: state input -> the output that feeds it at the next call; the first call of
      a stream gets zeros.
    """

    batch_axes: Mapping[str, int] = dataclasses.field(default_factory=dict)
    constants: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    states: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.batch_axes or self.constants or self.states)

    def axis(self, name: str) -> int:
        """The batch axis of input ``name`` (0 unless said otherwise)."""
        return self.batch_axes.get(name, 0)

    def data_inputs(self, signature: Signature) -> list[str]:
        """Inputs the data supplies: neither constant nor state."""
        return [n for n, _, _ in signature if n not in self.constants and n not in self.states]

    def constant_feeds(self, signature: Signature) -> dict[str, np.ndarray]:
        """The constants as arrays of the model's dtypes."""
        dtypes = {n: d for n, d, _ in signature}
        return {n: np.asarray(v, dtype=dtypes[n]) for n, v in self.constants.items()}

    def zero_states(self, signature: Signature, batch: int) -> dict[str, np.ndarray]:
        """Each state's first value for ``batch`` streams: zeros, every symbolic dim but the
        batch axis being 1.

        Raises:
            InputError: a state has a symbolic dim other than its batch axis (its size is
                unknown before the first call).
        """
        states = {}
        for name, dtype, shape in signature:
            if name not in self.states:
                continue
            dims = []
            for i, d in enumerate(shape):
                if i == self.axis(name):
                    dims.append(batch)
                elif isinstance(d, int) and d > 0:
                    dims.append(d)
                else:
                    raise InputError(
                        f"State input {name!r} has shape {tuple(shape)}: its axis {i} has no "
                        "fixed size, so its zero start cannot be built. Export the model with "
                        "a fixed state size, or name its batch axis with --batch-axis "
                        f"{name}={i} if that is the batch.")
            states[name] = np.zeros(dims, dtype=dtype)
        return states

    def stack(self, items: Sequence[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
        """Feeds of several one-item feeds: batched inputs joined on their batch axes, each
        constant once."""
        first = items[0]
        return {n: (v if n in self.constants
                    else np.concatenate([it[n] for it in items], axis=self.axis(n)))
                for n, v in first.items()}

    def head(self, feeds: Mapping[str, np.ndarray], items: int) -> dict[str, np.ndarray]:
        """The first ``items`` items of ``feeds``, cut on each input's batch axis; constants
        as they are."""
        return {n: v if n in self.constants else np.take(v, range(items), axis=self.axis(n))
                for n, v in feeds.items()}

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (the manifest's ``roles``, the data descriptor's options)."""
        return {"batch_axes": dict(self.batch_axes), "constants": dict(self.constants),
                "states": dict(self.states)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InputRoles:
        """Inverse of :meth:`to_dict`.

        Raises:
            InputError: a field is not a mapping of the right value types.
        """
        try:
            axes = {str(k): int(v) for k, v in dict(data.get("batch_axes", {})).items()}
            states = {str(k): str(v) for k, v in dict(data.get("states", {})).items()}
            constants = {str(k): v for k, v in dict(data.get("constants", {})).items()}
        except (TypeError, ValueError) as e:
            raise InputError(f"Malformed input roles {dict(data)!r:.200}: {e}.") from e
        return cls(batch_axes=axes, constants=constants, states=states)


def parse_roles(*, state: Sequence[str] = (), constant: Sequence[str] = (),
                batch_axis: Sequence[str] = ()) -> InputRoles:
    """Roles from ``--state IN=OUT``, ``--constant NAME=VALUE`` and ``--batch-axis NAME=AXIS``.

    A constant's value is a number or a JSON list (``--constant flags=[1,0]``).

    Raises:
        InputError: a flag not of the form NAME=VALUE, a value that is not a number.
    """
    import json

    def pairs(flag: str, given: Sequence[str]) -> dict[str, str]:
        out = {}
        for text in given:
            name, sep, value = str(text).partition("=")
            if not sep or not name.strip() or not value.strip():
                raise InputError(f"--{flag} {text!r} is not NAME=VALUE (e.g. --{flag} "
                                 f"{_EXAMPLES[flag]}).")
            out[name.strip()] = value.strip()
        return out

    constants = {}
    for name, value in pairs("constant", constant).items():
        try:
            constants[name] = json.loads(value)
        except ValueError:
            raise InputError(f"--constant {name}={value}: the value is not a number or a JSON "
                             "list (e.g. --constant sr=16000).") from None
    axes = {}
    for name, value in pairs("batch-axis", batch_axis).items():
        if not value.lstrip("-").isdigit():
            raise InputError(f"--batch-axis {name}={value}: the axis is not an integer.")
        axes[name] = int(value)
    return InputRoles(batch_axes=axes, constants=constants, states=pairs("state", state))


_EXAMPLES = {"state": "state=stateN", "constant": "sr=16000", "batch-axis": "state=1"}


def resolve_roles(roles: InputRoles, signature: Signature, outputs: Sequence[str]
                  ) -> InputRoles:
    """``roles`` checked against the model, with each state's batch axis read from its dims
    when not given (the one symbolic dim, or the dim named like a data input's first).

    Raises:
        InputError: a role names an input or output the model lacks, a constant does not fit
            its input's shape, a 0-d input has no constant, or a batch axis is out of range;
            each message names the input and the flag that fixes it.
    """
    shapes = {n: tuple(s) for n, _, s in signature}
    problems = [f"--{flag} names {name!r}, which is not an input of the model"
                for flag, names in (("state", roles.states), ("constant", roles.constants),
                                    ("batch-axis", roles.batch_axes))
                for name in names if name not in shapes]
    problems += [f"--state {i}={o}: the model has no output {o!r} (outputs: "
                 f"{', '.join(outputs)})" for i, o in roles.states.items() if o not in outputs]
    problems += [f"--constant names {n!r} and so does --{flag}" for n in roles.constants
                 for flag, names in (("state", roles.states), ("batch-axis", roles.batch_axes))
                 if n in names]
    axes = dict(roles.batch_axes)
    batch_names = {shapes[n][0] for n in roles.data_inputs(signature)
                   if n in shapes and shapes[n] and isinstance(shapes[n][0], str)
                   and roles.axis(n) == 0}
    for name, shape in shapes.items():
        if name in roles.constants:
            value = np.asarray(roles.constants[name])
            if value.ndim != len(shape) or any(isinstance(d, int) and d > 0 and d != g
                                               for d, g in zip(shape, value.shape, strict=False)):
                problems.append(f"--constant {name}: a value of shape {value.shape} does not "
                                f"fit the input's shape {shape}")
            continue
        if not shape:
            problems.append(f"input {name!r} is 0-d (a scalar), so it cannot hold a batch: "
                            f"give its value with --constant {name}=VALUE")
            continue
        if name in roles.states and name not in axes:
            axes[name] = _state_axis(shape, batch_names)
        if not 0 <= axes.get(name, 0) < len(shape):
            problems.append(f"--batch-axis {name}={axes[name]} is outside its {len(shape)} axes")
    if problems:
        raise InputError("The input roles do not fit the model: " + "; ".join(problems) + ".")
    return dataclasses.replace(roles, batch_axes={k: v for k, v in axes.items() if v})


def _state_axis(shape: tuple[Any, ...], batch_names: set[Any]) -> int:
    """A state's batch axis: the dim named like the data's batch dim, else its one symbolic
    dim, else 0."""
    named = [i for i, d in enumerate(shape) if isinstance(d, str) and d in batch_names]
    symbolic = [i for i, d in enumerate(shape) if not (isinstance(d, int) and d > 0)]
    return named[0] if named else symbolic[0] if len(symbolic) == 1 else 0


def items_in(feeds: Mapping[str, np.ndarray], roles: InputRoles) -> int:
    """How many items (streams) ``feeds`` hold, read on each batched input's batch axis.

    Raises:
        InputError: the batched inputs disagree on the count.
    """
    counts = {n: v.shape[roles.axis(n)] for n, v in feeds.items()
              if n not in roles.constants and v.ndim > roles.axis(n)}
    if len(set(counts.values())) > 1:
        raise InputError(f"The inputs hold different batch sizes on their batch axes {counts}; "
                         "name a non-leading batch axis with --batch-axis NAME=AXIS.")
    return next(iter(counts.values()), 1)
