"""A process of the session survives SIGKILL: frozen in a cgroup (v1 freezer), for real.

`kill` says so (`kill_unconfirmed`, exit 1, the survivors named). Once they are gone, the
session ends: its worker records the exit. It stayed `running` for ever, its worker with
it, and every later `kill` named the survivors of the first, long dead.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability.conftest import agentty, gone, record, start, wait_until

FREEZER = Path("/sys/fs/cgroup/freezer")


@contextlib.contextmanager
def frozen(pid: int) -> Iterator[Path]:
    """`pid` in a cgroup of its own, frozen (SIGKILL waits until it thaws); thawed after."""
    group = FREEZER / f"agentty-test-{uuid.uuid4().hex[:8]}"
    try:
        group.mkdir()
    except OSError as exc:
        pytest.skip(f"no cgroup v1 freezer to make a process survive SIGKILL: {exc}")
    try:
        (group / "cgroup.procs").write_text(str(pid))
        (group / "freezer.state").write_text("FROZEN")
        wait_until(lambda: (group / "freezer.state").read_text().strip() == "FROZEN")
        yield group
    finally:
        (group / "freezer.state").write_text("THAWED")
        wait_until(lambda: gone(pid) or not (group / "cgroup.procs").read_text().strip())
        wait_until(lambda: _removed(group))


def _removed(group: Path) -> bool:
    try:
        group.rmdir()
    except OSError:
        return False
    return True


def _thaw(group: Path) -> None:
    (group / "freezer.state").write_text("THAWED")


def _background_pid(session_id: str) -> int:
    agentty("wait", "-s", session_id, "--text", "BG=", check=True)
    screen = agentty("get", "-s", session_id, check=True).stdout
    return int(screen.split("BG=", 1)[1].split()[0])


def test_a_session_whose_survivors_go_ends_and_a_second_kill_looks_again(
    agentty_home: Path,
) -> None:
    rec = start("--", "sh", "-c", "sleep 1000000 & echo BG=$!; wait")
    sid, worker = rec["id"], rec["workerPid"]
    survivor = _background_pid(sid)
    with frozen(survivor) as group:
        first = agentty("kill", "-s", sid, "--timeout", "0.2")
        assert first.returncode == 1, first.stderr
        assert f"processes still alive after SIGKILL: [{survivor}]" in first.stderr
        again = agentty("kill", "-s", sid, "--timeout", "0.2")  # it tries again
        assert again.returncode == 1 and f"[{survivor}]" in again.stderr, again.stderr
        assert record(sid)["status"] == "running"
        _thaw(group)
        wait_until(lambda: gone(survivor))
        wait_until(lambda: gone(worker), timeout=20)  # the session ended: its worker too
    assert record(sid)["status"] == "exited"
    last = agentty("kill", "-s", sid)
    assert last.returncode == 1 and "already exited" in last.stderr, last.stderr


def test_a_second_kill_after_the_survivors_went_ends_the_session(agentty_home: Path) -> None:
    """The survivors gone (thawed) before anyone looks: the next `kill` confirms the end."""
    rec = start("--", "sh", "-c", "sleep 1000000 & echo BG=$!; wait")
    sid = rec["id"]
    survivor = _background_pid(sid)
    with frozen(survivor):
        assert agentty("kill", "-s", sid, "--timeout", "0.2").returncode == 1
    wait_until(lambda: gone(survivor))
    wait_until(lambda: record(sid)["status"] == "exited", timeout=20)
    assert not os.path.exists(agentty_home / "sockets" / f"{sid}.sock")


def _pidfds(pid: int) -> int:
    """How many pidfds the process holds (each waits for a survivor)."""
    fds = Path(f"/proc/{pid}/fd")
    return sum(1 for fd in fds.iterdir() if os.readlink(fd) == "anon_inode:[pidfd]")


def test_kills_that_leave_survivors_wait_for_them_once(agentty_home: Path) -> None:
    """Each `kill` that left survivors began a wait of its own for them, and nothing ended
    the earlier ones: a worker asked N times held N pidfds for each survivor."""
    rec = start("--", "sh", "-c", "sleep 1000000 & echo BG=$!; wait")
    sid, worker = rec["id"], rec["workerPid"]
    survivor = _background_pid(sid)
    with frozen(survivor):
        for _ in range(3):
            assert agentty("kill", "-s", sid, "--timeout", "0.2").returncode == 1
        wait_until(lambda: _pidfds(worker) >= 1)
        assert _pidfds(worker) == 1
    wait_until(lambda: gone(worker), timeout=20)
