"""The one session reaper (`agentty_core.pytest_plugin.reap`), used by the plugin's fixture
and by this suite's conftests: it ends what a test left, and with `leftovers=False` keeps
what a process census must see."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentty_core.pytest_plugin import reap
from tests.helpers.census import processes_of_home
from tests.helpers.cli import agentty_json, wait_until


@pytest.fixture
def stray(agentty_home: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A process carrying the home's marker for a session the records do not name (what a
    worker's survivors look like once their record is gone)."""
    env = dict(os.environ, AGENTTY_HOME=str(agentty_home), AGENTTY_SESSION_ID="0badcafe")
    proc = subprocess.Popen(["sleep", "1000000"], env=env, stdin=subprocess.DEVNULL)
    yield proc
    proc.kill()
    proc.wait(timeout=10)


def pids_of_home(home: Path) -> set[int]:
    return {p.pid for p in processes_of_home(str(home))}


def status_of(session_id: str) -> str:
    for rec in agentty_json("status")["sessions"]:
        if rec["id"] == session_id:
            return str(rec["status"])
    raise AssertionError(f"no record for {session_id}")


def test_reap_ends_running_and_lost_sessions_and_every_marked_leftover(
    agentty_home: Path, stray: subprocess.Popen[bytes]
) -> None:
    running = agentty_json("start", "--", "sleep", "1000000")
    lost = agentty_json("start", "--", "sh", "-c", "trap '' HUP; sleep 1000001; :")
    wait_until(lambda: len(pids_of_home(agentty_home)) >= 6)  # 2 workers, sleep, sh + sleep, stray
    os.kill(lost["workerPid"], signal.SIGKILL)  # its HUP-ignoring sleep outlives it
    wait_until(lambda: status_of(lost["id"]) == "lost")
    assert status_of(running["id"]) == "running"

    reap(agentty_home)

    stray.wait(timeout=10)  # ended by the reaper: collected here, so not a zombie
    wait_until(lambda: pids_of_home(agentty_home) == set())


def test_reap_without_leftovers_keeps_what_a_census_must_see(
    agentty_home: Path, stray: subprocess.Popen[bytes]
) -> None:
    rec = agentty_json("start", "--", "sleep", "1000000")

    reap(agentty_home, leftovers=False)

    wait_until(lambda: pids_of_home(agentty_home) == {stray.pid})
    assert status_of(rec["id"]) not in ("running", "starting", "lost")


def test_reap_of_a_home_with_unreadable_records_still_ends_leftovers(
    agentty_home: Path, stray: subprocess.Popen[bytes]
) -> None:
    (agentty_home / "sessions.json").write_bytes(b"\xff not json")

    reap(agentty_home)

    stray.wait(timeout=10)  # the reaper raised nothing, and swept by marker all the same
