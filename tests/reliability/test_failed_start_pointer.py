"""A start whose worker died after it wrote the running record and the active pointer (one
write), before `start` had its answer: `start` fails (exit 1), and the pointer names the
session that was active before, as an interrupted start's undo leaves it. It named the
failed session: a bare `get` then said "session ... failed to start"."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers.cli import agentty, agentty_json
from tests.helpers.spawner import warm_if


@pytest.mark.parametrize("spawner", ["direct", "forked"])
def test_a_failed_start_gives_the_active_pointer_back(
    agentty_home: Path, monkeypatch: pytest.MonkeyPatch, spawner: str
) -> None:
    warm_if(spawner == "forked", agentty_home, monkeypatch)
    base = agentty_json("start", "--name", "base", "--", "cat")["id"]
    env = dict(
        os.environ,
        AGENTTY_SPAWNER="1" if spawner == "forked" else "0",
        AGENTTY_FAILPOINTS="worker.before_ready=sigkill",
    )
    failed = agentty("start", "--name", "bad", "--", "sleep", "300", env=env)
    assert failed.returncode == 1 and "worker died during startup" in failed.stderr
    status = agentty_json("status")
    assert status["active"] == base
    bad = next(r for r in status["sessions"] if r.get("name") == "bad")
    assert bad["status"] == "failed"
    assert agentty("get").returncode == 0  # the base session's screen
    agentty("kill", "-s", base, check=True)
