"""S31: in a PID namespace (a container, a CI sandbox), nothing outside the session is hit.

There every process whose session lies outside the namespace reports session and group 0,
and so does a terminal whose session leader is gone (`tcgetpgrp`). A worker that once took
"group 0" for its program's group SIGKILLed the CI runner that started it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.reliability.conftest import AGENTTY

SCENARIO = r"""
import json, os, subprocess, sys, time
agentty, out = sys.argv[1], {}
bystander = subprocess.Popen(["sleep", "1000"])  # session 0, as seen from in here
fail = dict(os.environ, AGENTTY_FAILPOINTS="worker.after_bind=raise:ENOSPC")
out["failed_starts"] = [
    subprocess.run([agentty, "start", "--", "sleep", "1000"], env=fail,
                   capture_output=True, text=True).returncode
    for _ in range(3)
]
program = ["sh", "-c", "setsid sleep 1000 & exec sleep 1000"]
out["start"] = subprocess.run([agentty, "start", "--", *program], capture_output=True).returncode
out["kill"] = subprocess.run([agentty, "kill"], capture_output=True, text=True).returncode
time.sleep(0.3)
out["bystander_alive"] = bystander.poll() is None
bystander.kill()
print(json.dumps(out))
"""


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root and unshare(1)"
)
def test_s31_nothing_outside_the_session_is_signalled(agentty_home: Path) -> None:
    proc = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-c", SCENARIO, AGENTTY],
        capture_output=True,
        text=True,
        timeout=90,
        stdin=subprocess.DEVNULL,
    )
    # Killed by a signal (-9) is exactly the defect: the scenario's own process was hit.
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    out = json.loads(proc.stdout)
    assert out["failed_starts"] == [1, 1, 1], out
    assert out["start"] == 0 and out["kill"] == 0, out
    assert out["bystander_alive"], out
