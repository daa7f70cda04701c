"""Input roles: parsed from flags, checked against the model's signature with errors that
name the input and the flag that fixes it, and used to join items on their own batch axes."""

from __future__ import annotations

import numpy as np
import pytest

from frugalml.errors import InputError
from frugalml.runtime.roles import InputRoles, items_in, parse_roles, resolve_roles

VAD = [("audio", "float32", ("batch", 256)), ("state", "float32", (2, "batch", 64)),
       ("sr", "int64", ())]
OUTPUTS = ["speech", "stateN"]


def test_flags_parse_into_roles() -> None:
    roles = parse_roles(state=["state=stateN"], constant=["sr=16000", "flags=[1, 0]"],
                        batch_axis=["state=1"])
    assert roles.states == {"state": "stateN"}
    assert roles.constants == {"sr": 16000, "flags": [1, 0]}
    assert roles.batch_axes == {"state": 1}
    assert InputRoles.from_dict(roles.to_dict()) == roles
    assert not parse_roles()


@pytest.mark.parametrize(("flags", "message"), [
    ({"state": ["state"]}, "--state 'state' is not NAME=VALUE"),
    ({"constant": ["sr=fast"]}, "--constant sr=fast: the value is not a number"),
    ({"batch_axis": ["state=one"]}, "--batch-axis state=one: the axis is not an integer"),
])
def test_malformed_flags_are_refused(flags: dict[str, list[str]], message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_roles(**flags)


def test_a_state_batch_axis_is_read_from_the_model_dims() -> None:
    roles = resolve_roles(parse_roles(state=["state=stateN"], constant=["sr=16000"]), VAD,
                          OUTPUTS)
    assert roles.batch_axes == {"state": 1}
    zeros = roles.zero_states(VAD, batch=3)
    assert zeros["state"].shape == (2, 3, 64) and not zeros["state"].any()


@pytest.mark.parametrize(("flags", "message"), [
    ({"state": ["state=stateN"]}, r"input 'sr' is 0-d .*--constant sr=VALUE"),
    ({"state": ["state=next"], "constant": ["sr=16000"]}, "the model has no output 'next'"),
    ({"state": ["hidden=stateN"], "constant": ["sr=16000"]},
     "--state names 'hidden', which is not an input"),
    ({"state": ["state=stateN"], "constant": ["sr=[16000]"]},
     r"--constant sr: a value of shape \(1,\) does not fit"),
    ({"state": ["state=stateN"], "constant": ["sr=16000"], "batch_axis": ["state=3"]},
     "--batch-axis state=3 is outside its 3 axes"),
])
def test_roles_that_do_not_fit_the_model_name_the_input_and_flag(
        flags: dict[str, list[str]], message: str) -> None:
    with pytest.raises(InputError, match=message):
        resolve_roles(parse_roles(**flags), VAD, OUTPUTS)


def test_items_join_on_their_own_batch_axes_and_constants_once() -> None:
    roles = resolve_roles(parse_roles(state=["state=stateN"], constant=["sr=16000"]), VAD,
                          OUTPUTS)
    one = {"audio": np.ones((1, 256), np.float32), "state": np.ones((2, 1, 64), np.float32),
           "sr": np.array(16000)}
    two = {**one, "state": np.full((2, 1, 64), 2, np.float32)}
    joined = roles.stack([one, two])
    assert joined["audio"].shape == (2, 256) and joined["state"].shape == (2, 2, 64)
    assert joined["sr"].shape == () and (joined["state"][:, 1] == 2).all()
    assert items_in(joined, roles) == 2
    with pytest.raises(InputError, match="different batch sizes"):
        items_in({**joined, "audio": np.ones((3, 256), np.float32)}, roles)
