from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentty_core import protocol
from agentty_core.protocol import BadRequest


def test_round_trip() -> None:
    line = protocol.request("get", {"lines": 5})
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert protocol.decode_line(line) == {"v": 1, "method": "get", "params": {"lines": 5}}


def test_every_response_carries_the_version() -> None:
    assert json.loads(protocol.ok({}))["v"] == protocol.PROTOCOL_VERSION
    assert json.loads(protocol.error("x", "y"))["v"] == protocol.PROTOCOL_VERSION


@pytest.mark.parametrize(
    "line",
    [
        b"not json\n",
        b"\xff\xfe\n",
        b"[1, 2]\n",
        b'{"a": NaN}\n',
        b'{"a": Infinity}\n',
        b"[" * 100_000 + b"\n",
        b'{"a": ' + b"9" * 5000 + b"}\n",
        b'{"a":' * 40 + b"1" + b"}" * 40 + b"\n",
    ],
)
def test_bad_lines_are_rejected_cleanly(line: bytes) -> None:
    with pytest.raises(BadRequest):
        protocol.decode_line(line)


def test_oversized_line_is_rejected() -> None:
    with pytest.raises(BadRequest) as info:
        protocol.decode_line(b"x" * (protocol.MAX_LINE + 1))
    assert info.value.code == "too_large"


@given(st.binary(max_size=300))
def test_decode_never_raises_anything_but_bad_request(data: bytes) -> None:
    try:
        value = protocol.decode_line(data)
    except BadRequest:
        return
    assert isinstance(value, dict)


def test_encode_refuses_nan() -> None:
    with pytest.raises(ValueError):
        protocol.encode({"x": float("nan")})


def test_every_error_survives_a_pickle() -> None:
    """Raised in a process pool's worker, an error reaches the caller pickled: six of them
    were rebuilt through an `__init__` that takes other arguments, and failed (an attack
    round)."""
    import pickle

    from agentty_core import errors
    from agentty_core.api_types import SessionWaitTimeout

    screen = {"lines": ["a"], "seq": 3, "size": {"cols": 80, "rows": 24}}
    samples: list[errors.AgenttyError] = [
        errors.SessionNotRunning("0123abcd", "exited (code 0)"),
        SessionWaitTimeout("timed out after 1s", screen),
        errors.WaitTimeout("timed out", screen),
        errors.WorkerUnreachable("worker did not answer in time", "timeout"),
        errors.KillNotConfirmed("0123abcd", [1, 2]),
        errors.TransportError("box", "lost", "box: the link dropped"),
        errors.ProtocolMismatch(9, 1, "0123abcd"),
        errors.AmbiguousSession("01", ["0123abcd", "0199ffff"]),
        errors.SessionNotFound("nope"),
        errors.RemoteError("busy", code="busy", exit_code=1),
        errors.SpawnError("command not found: x", exit_code=127, log_path="/tmp/l"),
        errors.NoActiveSession(),
    ]
    for error in samples:
        error.input_sent = 7
        back = pickle.loads(pickle.dumps(error))
        assert type(back) is type(error) and str(back) == str(error)
        assert back.__dict__.keys() == error.__dict__.keys(), type(error)
        assert back.exit_code == error.exit_code and back.input_sent == 7
