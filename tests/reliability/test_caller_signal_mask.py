"""A `start` run by a process that blocked signals: the worker's own mask is empty.

The worker inherited the caller's signal mask, spawned directly or forked by the spawner.
With SIGCHLD blocked it never saw its program exit (the program a zombie, the session
`running` until a `kill`); with SIGVTALRM blocked a runaway regex would never be cut short.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.census import blocked_mask
from tests.helpers.cli import AGENTTY, agentty, agentty_json, signals_default
from tests.helpers.spawner import forked, warm_if

BLOCKS = (
    "import os, signal, sys\n"
    "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD, signal.SIGTERM, signal.SIGVTALRM})\n"
    "os.execv(sys.argv[1], sys.argv[1:])\n"
)


@pytest.mark.parametrize("spawner", ["1", "0"], ids=["forked", "direct"])
def test_a_caller_s_blocked_signals_are_not_the_worker_s(
    agentty_home: Path, monkeypatch: pytest.MonkeyPatch, spawner: str
) -> None:
    warm_if(spawner == "1", agentty_home, monkeypatch)
    env = dict(os.environ, AGENTTY_SPAWNER=spawner)
    started = subprocess.run(
        [
            sys.executable,
            "-c",
            BLOCKS,
            AGENTTY,
            "start",
            "--json",
            "--",
            "sh",
            "-c",
            "read x; exit 7",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=signals_default,
    )
    assert started.returncode == 0, started.stderr
    sid = json.loads(started.stdout)["id"]
    rec = next(r for r in agentty_json("status")["sessions"] if r["id"] == sid)
    assert forked(rec) == (spawner == "1")
    assert blocked_mask(rec["workerPid"]) == 0
    agentty("text", "-s", sid, "--enter", "go", check=True)
    ended = agentty("wait", "-s", sid, "--exit", "--timeout", "20")
    assert ended.returncode == 0, ended.stderr
    rec = next(r for r in agentty_json("status")["sessions"] if r["id"] == sid)
    assert (rec["status"], rec["exitCode"]) == ("exited", 7)
