"""The fast lane's liveness check (`cli/hotread.worker_alive`) says what the Client's
(`proc.identity.same_process`) says: alive, a zombie, gone, and another process's token."""

from __future__ import annotations

import os
import subprocess
import time

from agentty_core.cli import hotread
from agentty_core.proc import identity


def both(pid: int, token: str | None) -> tuple[bool, bool]:
    rec: dict[str, object] = {"workerPid": pid, "workerStart": token}
    return hotread.worker_alive(rec, []), identity.same_process(pid, token)


def test_the_two_checks_agree() -> None:
    me = os.getpid()
    assert both(me, identity.start_token(me)) == (True, True)
    assert both(me, "another-boot:1") == (False, False)
    child = subprocess.Popen(["true"])
    token = identity.start_token(child.pid)
    deadline = time.monotonic() + 10
    while identity.start_token(child.pid) is not None and time.monotonic() < deadline:
        time.sleep(0.01)  # a zombie once it exits (not reaped yet)
    assert both(child.pid, token) == (False, False)
    child.wait()
    assert both(child.pid, token) == (False, False)  # gone
