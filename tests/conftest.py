"""Shared fixtures: a private AGENTTY_HOME per test, and a census that fails any test
leaving a process of that home behind (worker or program)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentty_core.launch import spawner_client
from tests.helpers.census import describe, sweep_home

PROGRAMS = Path(__file__).parent / "programs"


@pytest.fixture
def spawner_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """The warm spawner, off for every other test (`agentty_home`), on for this one; a
    module of spawner tests asks for it for all of its own
    (`pytestmark = pytest.mark.usefixtures("spawner_on")`)."""
    monkeypatch.setenv("AGENTTY_SPAWNER", "1")


@pytest.fixture(autouse=True)
def agentty_home(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    # Short and under /tmp: socket paths must stay under 108 bytes.
    home = Path(tempfile.mkdtemp(prefix="at-", dir="/tmp"))
    os.chmod(home, 0o700)
    monkeypatch.setenv("AGENTTY_HOME", str(home))
    monkeypatch.delenv("AGENTTY_SESSION_ID", raising=False)
    monkeypatch.delenv("AGENTTY_FAILPOINTS", raising=False)
    # The warm spawner outlives the `start` that launched it: only its own tests turn it on
    # (and it is ended here, before the census, whatever the test did).
    # AGENTTY_TEST_SPAWNER=1 runs every test with it on, as users run agentty by default (a
    # look for what differs: the tests that count a home's processes or files count the
    # spawner's too, and fail on them, as ~40 did on 2026-12-05, all for that reason).
    monkeypatch.setenv("AGENTTY_SPAWNER", os.environ.get("AGENTTY_TEST_SPAWNER", "0"))
    monkeypatch.delenv("AGENTTY_SPAWNER_IDLE", raising=False)
    monkeypatch.setenv("AGENTTY_LINK", "0")  # a --host call's link outlives it (test_link*)
    # `start --shell` runs `$SHELL -lc`: a login shell reads the machine's own start-up files
    # (a pyenv set-up whose lock a session killed mid-way leaves behind stalled every later
    # one for a minute). They are no part of what is tested: a POSIX sh reads none of bash's.
    monkeypatch.setenv("SHELL", "/bin/sh")
    yield home
    spawner_client.stop(str(home))
    # A worker answers `kill` and then exits: give such processes a moment to finish.
    leftovers = sweep_home(str(home))
    shutil.rmtree(home, ignore_errors=True)
    if leftovers:
        pytest.fail(f"test left processes behind: {describe(leftovers)}")


@pytest.fixture
def programs() -> Path:
    return PROGRAMS
