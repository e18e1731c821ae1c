"""agentty's files change or go while sessions run (an upgrade, an uninstall).

A running worker keeps the code it loaded; what it imports later comes from whatever is on
disk then, or from nothing. Ending a session must not depend on that: the worker loads
what its end needs as soon as the session is up, so `kill`, and a SIGTERM to the worker,
still end it and leave nothing behind."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import agentty_core
from tests.reliability.conftest import AGENTTY, gone, of_session, raw_record, wait_until

BOOT = "import sys; from agentty_core.cli.hotpath import main; sys.exit(main())"


@pytest.fixture(params=["", "worker.after_ready=sleep:0.5"], ids=["at-once", "right-after"])
def session_on_a_copy(tmp_path: Path, request: pytest.FixtureRequest) -> tuple[str, int]:
    """A session whose worker runs a copy of the package, and the copy removed: once it is
    up, or (`right-after`) while the worker is still at its first step after `start` had
    its answer (where it once imported what its end needs)."""
    code = tmp_path / "code"
    package = Path(agentty_core.__file__).parent
    shutil.copytree(package, code / "agentty_core", ignore=shutil.ignore_patterns("__pycache__"))
    # No bytecode written into the copy: a worker importing a module as the copy is removed
    # would add a __pycache__ file under rmtree's feet ("Directory not empty", seen in CI).
    env = dict(os.environ, PYTHONPATH=str(code), AGENTTY_SPAWNER="0", PYTHONDONTWRITEBYTECODE="1")
    env["AGENTTY_FAILPOINTS"] = request.param
    proc = subprocess.run(
        [sys.executable, "-c", BOOT, "start", "--", "cat"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    sid = proc.stdout.strip()
    worker = raw_record(Path(os.environ["AGENTTY_HOME"]), sid)["workerPid"]
    assert f"{code}" in Path(f"/proc/{worker}/environ").read_text(errors="replace")
    shutil.rmtree(code)
    return sid, worker


def test_kill_ends_a_session_whose_code_is_gone(
    agentty_home: Path, session_on_a_copy: tuple[str, int]
) -> None:
    sid, worker = session_on_a_copy
    killed = subprocess.run(
        [AGENTTY, "kill", "-s", sid], capture_output=True, text=True, timeout=60
    )
    assert killed.returncode == 0, killed.stderr
    wait_until(lambda: gone(worker) and not of_session(agentty_home, sid), timeout=15)
    assert raw_record(agentty_home, sid)["status"] == "exited"


def test_sigterm_ends_a_session_whose_code_is_gone(
    agentty_home: Path, session_on_a_copy: tuple[str, int]
) -> None:
    sid, worker = session_on_a_copy
    os.kill(worker, signal.SIGTERM)
    wait_until(lambda: gone(worker) and not of_session(agentty_home, sid), timeout=15)
    assert raw_record(agentty_home, sid)["status"] == "exited"
