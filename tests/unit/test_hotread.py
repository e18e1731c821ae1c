"""The fast lane's readers and writers (`cli/hotread.py`, C modules only) agree with the full
path's functions they mirror."""

from __future__ import annotations

import json

import pytest

from agentty_core.cli import hotread
from agentty_core.errors import AgenttyError
from agentty_core.state import records

GOOD = {"id": "0123abcd", "status": "running", "name": "py", "startedAt": "2026-01-01"}
RECORDS = [
    GOOD,
    {"id": "0123abcd"},
    {"id": "0123ABCD", "status": "running"},
    {"id": "0123abc", "status": "running"},
    {"id": 5, "status": "running"},
    {"id": "0123abce", "status": "gone"},
    {"id": "0123abce", "status": ["running"]},
    {"id": "0123abce", "status": {"a": 1}},
    {"id": "0123abce", "status": "exited", "exitCode": "3"},
    {"id": "0123abce", "status": "exited", "exitCode": True},
    {"id": "0123abce", "status": "exited", "pid": 1.5},
    {"id": "0123abce", "status": "exited", "argv": ["a", 1]},
    {"id": "0123abce", "status": "exited", "argv": "a"},
    {"id": "0123abce", "status": "lost", "argv": ["a"], "name": None, "workerStart": "b:1"},
    {"id": "0123abce", "status": "failed", "error": 3},
    {"id": "0123abce", "status": "exited", "exitCode": -(2**63), "cols": 1.5e300},
    {"id": "0123abce", "status": "exited", "signal": "SIGRTMIN+15"},
]
OUT_OF_RANGE: list[dict[str, object]] = [
    {"id": "0123abce", "status": "exited", "cols": float("inf")},
    {"id": "0123abce", "status": "exited", "createTime": float("nan")},
    {"id": "0123abce", "status": "exited", "exitCode": 10**400},
    {"id": "0123abce", "status": "exited", "signal": "SIG" + "X" * 100_000},
    # Inside a field of another kind (one agentty does not know, kept by every writer):
    # `status --json` printed the record whole, NaN and Infinity with it.
    {"id": "0123abce", "status": "exited", "extra": {"at": float("nan")}},
    {"id": "0123abce", "status": "exited", "extra": [1, [2, {"a": -float("inf")}]]},
    {"id": "0123abce", "status": "exited", "extra": {"n": 10**400}},
]
RECORDS += OUT_OF_RANGE
# Nested numbers in range are fine, and so is nesting as deep as a JSON reader goes.
RECORDS += [
    {"id": "0123abce", "status": "exited", "extra": {"at": 1.5, "list": [1, "a", None]}},
    {"id": "0123abce", "status": "exited", "extra": json.loads("[" * 900 + "]" * 900)},
]


@pytest.mark.parametrize("raw", RECORDS, ids=json.dumps)
def test_well_formed_is_records_bad_record(raw: dict[str, object]) -> None:
    assert hotread.well_formed(raw) == (records.bad_record(raw) is None)


LIST: list[dict[str, object]] = [
    {"id": "0123abcd", "status": "exited", "name": "py", "startedAt": "1"},
    {"id": "0123abce", "status": "running", "name": "py", "startedAt": "0"},
    {"id": "0124abcd", "status": "exited", "name": "old", "startedAt": "2"},
    {"id": "0124abce", "status": "exited", "name": "old", "startedAt": "3"},
    {"id": "ffffffff", "status": "running", "name": "0123abcd"},
]


@pytest.mark.parametrize(
    "ref", ["0123abcd", "py", "old", "0124", "0123", "0", "ff", "nosuch", "", "a/b", "x" * 300]
)
def test_find_is_records_find(ref: str) -> None:
    try:
        expected: object = records.find(LIST, ref)  # type: ignore[arg-type]  # plain dicts
    except AgenttyError:
        expected = None
    assert hotread.find(LIST, ref) == expected


@pytest.mark.parametrize(
    "value",
    [
        {"lines": ["héllo", "\x1b", "\ud800"], "n": 1.5, "b": True, "z": None, "i": -3},
        {"nested": [{"a": []}, {}], "big": 10**20, "f": 1e-7, "u": "日本"},
    ],
)
def test_dumps_is_json_dumps(value: dict[str, object]) -> None:
    for ascii_only in (True, False):
        assert hotread.dumps(value, ascii_only=ascii_only) == json.dumps(
            value, ensure_ascii=ascii_only
        )


@pytest.mark.parametrize("text", ['{"a": [1, 2.5, "x", null, true]}', " [1] ", '"s"', "1"])
def test_loads_is_json_loads(text: str) -> None:
    assert hotread.loads(text) == json.loads(text)


@pytest.mark.parametrize("text", ["", "NaN", "[1] 2", "{", '{"a": Infinity}'])
def test_loads_refuses_what_json_refuses_or_the_protocol_never_sends(text: str) -> None:
    with pytest.raises(ValueError):
        hotread.loads(text)


@pytest.mark.parametrize("raw", OUT_OF_RANGE, ids=lambda raw: str(raw)[:60])
def test_numbers_no_json_reader_takes_and_overlong_signals_are_malformed(
    raw: dict[str, object],
) -> None:
    """A hand-edited `1e999` or `NaN` went out as `status --json`'s Infinity and NaN (no
    parser but Python's reads them); a 400-digit exit code and a 100 kB signal name were
    printed whole into the table (an attacker's round)."""
    assert records.bad_record(raw) is not None and not hotread.well_formed(raw)
