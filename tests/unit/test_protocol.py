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
