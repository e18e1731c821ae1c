"""A second `kill` while one is under way: the shorter grace of the two is the one kept.

A kill under way absorbed the next one and kept its own grace: `kill --timeout 0` after a
`kill --timeout 15` of a program that ignores SIGHUP and SIGTERM (or after a first kill
SIGKILLed by a harness's timeout) took ~20 s, and its client, which waited for its own
grace, gave up and ended the worker: the session was `lost`, with no exit code and no final
screen (an attacker's round).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.reliability.conftest import AGENTTY, agentty, gone, record, start

STUBBORN = "trap 'echo GOT-HUP' HUP; trap '' TERM; echo READY; while :; do sleep 0.2; done"


@pytest.mark.parametrize("first_ends", ["waits", "is_killed"])
def test_a_second_kill_with_a_shorter_grace_takes_over(agentty_home: Path, first_ends: str) -> None:
    rec = start("--", "sh", "-c", STUBBORN)
    sid = rec["id"]
    agentty("wait", "-s", sid, "--text", "READY", check=True)
    first = subprocess.Popen(
        [AGENTTY, "kill", "-s", sid, "--timeout", "15"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # the first kill's SIGHUP taken: its ladder waits out its grace now
        agentty("wait", "-s", sid, "--text", "GOT-HUP", check=True)
        if first_ends == "is_killed":
            first.kill()
        started = time.monotonic()
        second = agentty("kill", "-s", sid, "--timeout", "0")
        took = time.monotonic() - started
        assert second.returncode == 0, second.stderr
        stored = record(sid)
        assert (stored["status"], stored.get("signal")) == ("exited", "SIGKILL"), stored
        assert took < 10, took  # a guard against the old 20 s, not a speed target
        if first_ends == "waits":
            out, err = first.communicate(timeout=30)
            assert first.returncode == 0, err
            assert "SIGKILL" in out, out  # (the kill that took over answered it)
        assert "READY" in agentty("get", "-s", sid, check=True).stdout
        assert gone(rec["workerPid"]) or record(sid)["status"] == "exited"
    finally:
        if first.poll() is None:
            first.kill()
        first.wait()


def test_a_shorter_kill_sent_at_the_same_moment_takes_over(agentty_home: Path) -> None:
    """Both kills at the worker before the first one's task took a step: the second joined
    the first (its ladder not marked as begun yet) and waited out its 2 x 6 s (a review)."""
    import socket

    from agentty_core import protocol

    rec = start("--", "sh", "-c", STUBBORN)
    sid = rec["id"]
    agentty("wait", "-s", sid, "--text", "READY", check=True)
    slow, fast = (socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) for _ in range(2))
    try:
        for sock in (slow, fast):
            sock.connect(rec["socket"])
            sock.settimeout(30)
        # Both at the worker at once: sent while it is stopped, read in one turn of its loop.
        os.kill(rec["workerPid"], signal.SIGSTOP)
        try:
            slow.sendall(protocol.request("kill", {"grace": 6}))
            fast.sendall(protocol.request("kill", {"grace": 0}))
        finally:
            os.kill(rec["workerPid"], signal.SIGCONT)
        started = time.monotonic()
        answer = fast.makefile("rb").readline()
        took = time.monotonic() - started
        assert b'"ok": true' in answer or b'"ok":true' in answer, answer
        assert took < 6, took  # a guard against waiting out the first's grace
        assert record(sid)["signal"] == "SIGKILL"
    finally:
        slow.close()
        fast.close()
