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
def test_a_start_that_cannot_print_its_id_leaves_no_session(
    agentty_home: Path, way: str, as_json: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if way == "lane":
        monkeypatch.setenv("AGENTTY_SPAWNER", "1")
        warm(agentty_home)
    before = {s["id"] for s in agentty_json("status")["sessions"]}
    proc = to_full("start", *(["--json"] if as_json else []), "--", "cat")
    assert proc.returncode == 1
    assert proc.stderr == MESSAGE + "; the session was ended\n"
    made = [s for s in agentty_json("status")["sessions"] if s["id"] not in before]
    assert [(s["command"], s["status"]) for s in made] == [("cat", "exited")]
