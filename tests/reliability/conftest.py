"""Reliability fixtures and helpers.

Every scenario runs with the fresh `AGENTTY_HOME` and the process census of
`tests/conftest.py`; the autouse fixture below kills whatever a scenario left running
(orphans of dead workers included), so the census only fails on real leaks.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from agentty_core.pytest_plugin import reap
from tests.helpers.census import processes_of_home
from tests.helpers.cli import AGENTTY as AGENTTY
from tests.helpers.cli import agentty as agentty
from tests.helpers.cli import agentty_json as agentty_json
from tests.helpers.cli import wait_until as wait_until

PYTHON = sys.executable
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


@pytest.fixture(autouse=True)
def kill_all_sessions() -> Iterator[None]:
    yield
    reap(Path(os.environ["AGENTTY_HOME"]))  # the home `agentty` sees now; orphans included


def agentty_as_nobody(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`agentty ARGS` run as the `nobody` user with `home` as its AGENTTY_HOME (root, which
    CI runs as, ignores directory modes; these scenarios need a user that does not)."""
    return subprocess.run(
        [*NOBODY, AGENTTY, *args],
        capture_output=True,
        text=True,
        env=dict(os.environ, AGENTTY_HOME=str(home), HOME=str(home)),
        timeout=30,
        cwd="/",
    )


def start(*args: str) -> dict[str, Any]:
    """`agentty start --json ARGS`: the new record (fails the test if start fails)."""
    return agentty_json("start", *args)


def sessions() -> list[dict[str, Any]]:
    value = agentty_json("status")["sessions"]
    assert isinstance(value, list)
    return value


def record(session_id: str) -> dict[str, Any]:
    for rec in sessions():
        if rec["id"] == session_id:
            return rec
    raise AssertionError(f"no record for {session_id}")


def raw_records(home: Path) -> list[dict[str, Any]]:
    """The records as stored, read without letting any agentty command touch them."""
    value = json.loads((home / "sessions.json").read_bytes())["sessions"]
    assert isinstance(value, list)
    return value


def raw_record(home: Path, session_id: str) -> dict[str, Any]:
    for rec in raw_records(home):
        if rec["id"] == session_id:
            return rec
    raise AssertionError(f"no stored record for {session_id}")


def gone(pid: int) -> bool:
    """The process is gone or a zombie (its parent reaps it later)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def alive_of_home(home: Path) -> list[psutil.Process]:
    return processes_of_home(str(home))


def of_session(home: Path, session_id: str) -> list[psutil.Process]:
    """Live processes carrying the session's marker."""
    found = []
    for proc in alive_of_home(home):
        try:
            if proc.environ().get("AGENTTY_SESSION_ID") == session_id:
                found.append(proc)
        except psutil.Error:
            continue
    return found


def sigkill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: gone(pid), timeout=10)


def run_env(
    args: list[str], env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """`agentty ARGS` with an explicit environment."""
    return subprocess.run(
        [AGENTTY, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def with_failpoints(spec: str) -> dict[str, str]:
    return dict(os.environ, AGENTTY_FAILPOINTS=spec)


def kill_by_cmdline(token: str) -> list[int]:
    """Kill (by pid) every process whose command line contains `token`; their pids."""
    killed = []
    for proc in psutil.process_iter():
        try:
            if token in " ".join(proc.cmdline()) and proc.pid != os.getpid():
                proc.kill()
                killed.append(proc.pid)
        except psutil.Error:
            continue
    return killed


def write_private(path: Path, data: bytes) -> None:
    """Plant a file (a corrupt or crafted sessions.json) the way agentty writes its own."""
    tmp = path.with_name(path.name + ".planted")
    tmp.write_bytes(data)
    tmp.chmod(0o600)
    os.replace(tmp, path)


@contextlib.contextmanager
def state_lock(home: Path) -> Iterator[None]:
    """The state lock, held by this (other) process the way every agentty process takes it."""
    fd = os.open(home / "sessions.json.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
