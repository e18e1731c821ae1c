"""`doctor` on a home whose file system is full: it said every check was ok while every
`start` failed ("No space left on device writing sessions.json") and a worker whose program
ended retried its exit record."""

from __future__ import annotations

from pathlib import Path

import psutil

from tests.helpers.cli import agentty, wait_until
from tests.reliability.test_worker_io_faults import _fill, tmpfs


def test_doctor_says_the_home_s_disk_is_full_and_what_to_do(agentty_home: Path) -> None:
    with tmpfs(agentty_home, agentty_home, "2m"):
        agentty("start", "--", "cat", check=True)
        healthy = agentty("doctor")
        assert "ok    disk space:" in healthy.stdout, healthy.stdout
        filler = _fill(agentty_home)
        try:
            full = agentty("doctor")
            assert full.returncode == 1
            assert f"FAIL  disk space: 0.0 MiB free on the file system of {agentty_home}" in (
                full.stdout
            ), full.stdout
            assert "fix: free space there, or set AGENTTY_HOME elsewhere" in full.stdout
        finally:
            filler.unlink()
        assert "ok    disk space:" in agentty("doctor").stdout
        agentty("kill", check=True)


def test_doctor_says_the_home_s_file_system_is_read_only(agentty_home: Path) -> None:
    """Every start, run and gc failed ("Read-only file system") while doctor said all was
    ok, 4 MiB free (an attacker's round)."""
    import subprocess

    with tmpfs(agentty_home, agentty_home, "2m"):
        agentty("status", check=True)  # (the home made)
        subprocess.run(["mount", "-o", "remount,ro", str(agentty_home)], check=True)
        try:
            said = agentty("doctor")
            assert said.returncode == 1, said.stdout
            line = f"FAIL  disk space: the file system of {agentty_home} is read-only"
            assert line in said.stdout, said.stdout
            assert "fix: remount it read-write, or set AGENTTY_HOME elsewhere" in said.stdout
        finally:
            subprocess.run(["mount", "-o", "remount,rw", str(agentty_home)], check=True)


def test_doctor_names_a_stopped_holder_of_the_state_lock(agentty_home: Path) -> None:
    """`gc` stopped with Ctrl-Z while it held the state lock: every start and attach failed
    after 10 s, naming only the lock file, and doctor said all was ok (an attacker's
    round)."""
    import os
    import signal
    import subprocess
    import sys

    agentty("status", check=True)
    lock = agentty_home / "sessions.json.lock"
    lock.touch(mode=0o600)
    hold = (
        "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR);"
        " fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(60)"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", hold, str(lock)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        os.kill(holder.pid, signal.SIGSTOP)
        said = agentty("doctor")
        assert said.returncode == 1, said.stdout
        line = f"FAIL  state lock: held by pid {holder.pid} (python"
        assert line in said.stdout and "), stopped:" in said.stdout, said.stdout
        assert f"kill -CONT {holder.pid}" in said.stdout
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        os.kill(holder.pid, signal.SIGCONT)
        holder.wait()
    assert "ok    state lock:" in agentty("doctor").stdout


def test_doctor_names_the_child_holding_the_lock_its_dead_parent_took(agentty_home: Path) -> None:
    """`flock LOCK sleep 60` killed: `/proc/locks` still names the dead `flock`, and the
    `sleep` that kept its descriptor holds the lock. Nobody was named (an attacker's round;
    a review): the holder is found by the descriptor that holds it."""
    import subprocess

    agentty("status", check=True)
    lock = agentty_home / "sessions.json.lock"
    lock.touch(mode=0o600)
    parent = subprocess.Popen(["flock", str(lock), "sleep", "60"])
    wait_until(lambda: bool(psutil.Process(parent.pid).children()))
    child = psutil.Process(parent.pid).children()[0]
    try:
        parent.kill()
        parent.wait()
        said = agentty("doctor")
        assert f"FAIL  state lock: held by pid {child.pid} (sleep)" in said.stdout, said.stdout
    finally:
        child.kill()
    wait_until(lambda: "ok    state lock:" in agentty("doctor").stdout)
