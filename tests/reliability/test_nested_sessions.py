"""A session started from inside another one is a session of its own.

A worker is a child subreaper (nothing of its program escapes it), so the worker of a
session that a program of the session starts (an agent running in agentty that uses
agentty) was re-parented to it once detached: ending the outer session, by `kill` or by
its program's exit, walked down its descendants and ended the inner sessions with it, with
the spawner on or off (found by an attack round)."""

from __future__ import annotations

import shlex
from typing import Any

import pytest

from tests.reliability.conftest import (
    AGENTTY,
    agentty,
    agentty_json,
    gone,
    record,
    start,
    wait_until,
)


def _started_inside(outer: str, name: str, spawner: str) -> dict[str, Any]:
    """`agentty start --name NAME -- sleep 300`, typed into the outer session's shell."""
    line = f"AGENTTY_SPAWNER={spawner} {shlex.quote(AGENTTY)} start --name {name} -- sleep 300"
    agentty("text", "--session", outer, "--enter", line, check=True)
    found: list[dict[str, Any]] = []

    def running() -> bool:
        found[:] = [r for r in agentty_json("status")["sessions"] if r.get("name") == name]
        return bool(found) and found[0]["status"] == "running"

    wait_until(running)
    agentty("wait", "--session", outer, "--input", "--timeout", "30", check=True)
    return found[0]


@pytest.mark.parametrize("spawner", ["0", "1"], ids=["direct", "spawner"])
@pytest.mark.parametrize("end", ["kill", "exit"])
def test_ending_a_session_leaves_the_sessions_started_inside_it(spawner: str, end: str) -> None:
    outer = str(start("--name", "outer", "--", "bash", "--norc", "--noprofile")["id"])
    agentty("wait", "--session", outer, "--input", "--timeout", "30", check=True)
    inner = _started_inside(outer, "inner", spawner)
    if end == "kill":
        agentty("kill", "--session", outer, check=True)
    else:
        agentty("text", "--session", outer, "--enter", "exit 0", check=True)
        agentty("wait", "--session", outer, "--exit", "--timeout", "30", check=True)
    wait_until(lambda: record(outer)["status"] != "running")
    assert record(str(inner["id"]))["status"] == "running"
    assert not gone(int(inner["pid"])) and not gone(int(inner["workerPid"]))
    screen = agentty_json("get", "--session", str(inner["id"]))
    assert screen["exited"] is False
    if spawner == "1":  # launched from in there, it is the home's: it serves on
        assert agentty_json("status")["spawner"] is not None
    agentty("kill", "--session", str(inner["id"]), check=True)
