"""The home is removed while sessions run (`rm -rf ~/.agentty`, a cleaned-up temp dir).

Ending a session still ends its program at once. With nowhere to record the exit, the
worker must not go on retrying the write (a held lock or a full disk, which may pass, get
ten minutes): it says why in its log and exits."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import psutil

from tests.reliability.conftest import AGENTTY, gone, wait_until


def test_a_worker_whose_home_was_removed_ends_when_told() -> None:
    home = Path(tempfile.mkdtemp(prefix="athg-", dir="/tmp"))
    os.chmod(home, 0o700)
    env = dict(os.environ, AGENTTY_HOME=str(home), AGENTTY_SPAWNER="0")
    started = subprocess.run(
        [AGENTTY, "start", "--json", "--", "cat"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    rec = json.loads(started.stdout)
    worker, program = psutil.Process(rec["workerPid"]), psutil.Process(rec["pid"])
    try:
        shutil.rmtree(home)
        os.kill(worker.pid, signal.SIGTERM)
        wait_until(lambda: gone(program.pid), timeout=10)  # the program first, as always
        wait_until(lambda: gone(worker.pid), timeout=10)  # then the worker, not minutes later
    finally:
        for proc in (worker, program):
            with contextlib.suppress(psutil.Error):
                proc.kill()
        shutil.rmtree(home, ignore_errors=True)
