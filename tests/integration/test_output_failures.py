"""Our stdout cannot be written (`> /dev/full`): one line on stderr and exit 1, never a
traceback, on the fast lane and the full path; a `start` that cannot say which session it
made leaves none running."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.helpers.cli import AGENTTY, agentty, agentty_json
from tests.helpers.spawner import warm

MESSAGE = "agentty: error: cannot write the output: No space left on device"


def to_full(*args: str) -> subprocess.CompletedProcess[str]:
    with open("/dev/full", "w") as full:
        return subprocess.run(
            [AGENTTY, *args],
            stdout=full,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            timeout=60,
        )


def test_every_kind_of_output_to_a_full_device_is_one_line() -> None:
    sid = agentty_json("start", "--", "cat")["id"]
    agentty("text", "--enter", "hello", check=True)
    agentty("wait", "--text", "hello", check=True)
    for args in (
        ["get"],  # the lane
        ["get", "--json"],
        ["get", "--raw"],  # the full path, bytes
        ["status"],
        ["status", "--json"],
        ["help", "--json"],
        ["logs"],
        ["wait", "--text", "hello"],
    ):
        proc = to_full(*args)
        assert (proc.returncode, proc.stderr) == (1, MESSAGE + "\n"), args
    agentty("kill", "-s", sid, check=True)


@pytest.mark.parametrize("way", ["lane", "full"])
@pytest.mark.parametrize("as_json", [False, True])
@pytest.mark.parametrize("program", ["cat", "true"])  # true: ended before the kill
def test_a_start_that_cannot_print_its_id_leaves_no_session(
    agentty_home: Path, way: str, as_json: bool, program: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if way == "lane":
        monkeypatch.setenv("AGENTTY_SPAWNER", "1")
        warm(agentty_home)
    active = agentty_json("start", "--name", "active", "--", "cat")["id"]
    before = agentty_json("status")["sessions"]
    proc = to_full("start", *(["--json"] if as_json else []), "--", program)
    assert proc.returncode == 1
    assert proc.stderr == MESSAGE + "; the session was ended\n"
    after = agentty_json("status")
    assert after["sessions"] == before  # it left no record (and no process: the fixture)
    assert after["active"] == active  # nor the active pointer (`get` would read a dead one)
    agentty("kill", "-s", active, check=True)


def test_a_closed_stdout_is_one_line_too() -> None:
    """`>&-`: the interpreter starts with no sys.stdout, and every write was a traceback
    (AttributeError: 'NoneType' ...). `start` and `run` keep their answers (the id is not
    asked for; the program's code)."""
    sid = agentty_json("start", "--", "cat")["id"]
    for args in (["get"], ["get", "--json"], ["status"], ["status", "-q"], ["help", "--json"]):
        proc = subprocess.run(
            ["sh", "-c", 'exec "$0" "$@" >&-', AGENTTY, *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert (proc.returncode, proc.stderr) == (1, f"{CLOSED}\n"), args
    agentty("kill", "-s", sid, check=True)


CLOSED = "agentty: error: cannot write the output: stdout is closed"


def test_the_mcp_server_with_a_full_stdout_says_so_in_one_line() -> None:
    pytest.importorskip("mcp")
    hello = (
        '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":'
        '"2024-11-05","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}\n'
    )
    with open("/dev/full", "w") as full:
        proc = subprocess.run(
            [AGENTTY, "mcp"],
            input=hello,
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    assert (proc.returncode, proc.stderr) == (1, MESSAGE + "\n")
