"""The kill ladder never reaches beyond a session, whatever its target list says."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading

import psutil
import pytest

from agentty_core.proc import killtree
from agentty_core.proc.killtree import group_members, ladder, protected_pids, run_sync


def test_group_zero_and_one_name_nobody() -> None:
    # tcgetpgrp answers 0 once a terminal's session leader is gone, and in a PID namespace
    # every process whose session lies outside reports session 0 (a CI runner among them).
    assert group_members(0) == []
    assert group_members(1) == []
    assert group_members(-1) == []


def test_group_members_finds_a_real_group() -> None:
    proc = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        assert [p.pid for p in group_members(proc.pid)] == [proc.pid]
    finally:
        proc.kill()
        proc.wait()


def test_protected_pids_are_init_self_and_ancestors() -> None:
    protected = protected_pids()
    assert {1, os.getpid(), os.getppid()} <= protected
    assert all(p.pid in protected for p in psutil.Process().parents())


def test_ladder_skips_protected_targets_and_ends_the_rest() -> None:
    victim = subprocess.Popen(["sleep", "30"])
    try:
        me, parent = psutil.Process(), psutil.Process().parent()
        assert parent is not None
        targets = [me, parent, psutil.Process(victim.pid)]
        result = run_sync(ladder(lambda: targets, grace=1.0))
        assert victim.wait(timeout=5) < 0  # ended by a signal
        assert result.escalated[:1] == ["SIGHUP"] and result.survivors == []
        assert me.is_running() and parent.is_running()
    finally:
        victim.kill()
        victim.wait()


@pytest.mark.parametrize("runner", ["sync", "async"])
def test_a_pause_ends_when_a_watched_process_ends(
    runner: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ladder's pauses are event-driven (pidfd): a pause of minutes, with no recheck
    meanwhile, is over as soon as the process it watches is gone."""
    monkeypatch.setattr(killtree, "RECHECK", 120.0)
    proc = subprocess.Popen(["sleep", "60"])
    done = threading.Event()
    pause = killtree.Pause(120.0, (proc.pid,))

    def wait() -> None:
        if runner == "sync":
            killtree.pause_sync(pause)
        else:
            asyncio.run(killtree.pause_async(pause))
        done.set()

    thread = threading.Thread(target=wait, daemon=True)
    thread.start()
    assert not done.wait(0.2)  # it waits while the process lives
    proc.kill()
    assert done.wait(30)
    thread.join()
    proc.wait()


SUBREAPER_SCENARIO = """
import json, os, subprocess, sys, time
from agentty_core.proc import killtree, ptyhost
ptyhost.become_subreaper()  # as the worker is
proc = subprocess.Popen(
    ["sh", "-c", "(setsid sleep 31 &); exec sleep 30"], start_new_session=True
)
deadline = time.monotonic() + 20


def argv(pid):
    try:
        return open(f"/proc/{pid}/cmdline").read().split("\\0")[:2]
    except OSError:
        return []


while time.monotonic() < deadline:  # until both have exec'd their sleep
    found = killtree.session_processes(proc.pid, None)
    out = [(argv(p.pid), os.getsid(p.pid)) for p in found]
    sleeps = sorted(a[1] for a, _ in out if len(a) == 2 and a[0] == "sleep")
    if sleeps == ["30", "31"] and len(out) == 2:
        break
    time.sleep(0.01)
mine = [p.pid for p in killtree.session_processes(os.getpid(), None) if p.pid == os.getpid()]
for p in found:
    os.kill(p.pid, 9)
proc.wait()
print(json.dumps({"found": out, "leader": proc.pid, "mine": mine}))
"""


def test_session_processes_finds_descendants_that_left_the_session() -> None:
    """A daemon that double-forked and called setsid is in no group of the session, but a
    subreaper (the worker) inherits it, and as its descendant it is found; the looking
    process itself never is."""
    run = subprocess.run(
        [sys.executable, "-c", SUBREAPER_SCENARIO],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    found = sorted((argv[1], sid == out["leader"]) for argv, sid in out["found"])
    assert found == [("30", True), ("31", False)]  # the daemon left the session
    assert out["mine"] == []


def test_a_process_found_earlier_is_signalled_only_while_it_is_the_same() -> None:
    """A target is a pid with its start time: one whose start time differs (the pid was
    recycled) is neither alive nor signalled."""
    proc = subprocess.Popen(["sleep", "30"])
    try:
        (found,) = [p for p in killtree.session_processes(None, None) if p.pid == proc.pid]
        assert isinstance(found, killtree.Proc)
        assert killtree.alive([found]) == [found]
        stranger = killtree.Proc(proc.pid, str(int(found.start) - 1))
        assert killtree.alive([stranger]) == []
        killtree.kill_now([stranger])
        assert proc.poll() is None  # the stranger was spared: it is not that process
        killtree.kill_now([found])
        assert proc.wait(timeout=10) == -9
        assert killtree.alive([found]) == []
    finally:
        proc.kill()
        proc.wait()


WALK_SCENARIO = r"""
import json, subprocess, sys, time
from agentty_core.proc import killtree, ptyhost
ptyhost.become_subreaper()  # as the worker is
THREADED = '''
import subprocess, threading, time
def fork():  # its child is listed under this thread, not the main one
    subprocess.Popen(["sleep", "32"])
    time.sleep(60)
threading.Thread(target=fork, daemon=True).start()
time.sleep(60)
'''
proc = subprocess.Popen(
    ["sh", "-c", '(setsid sleep 31 &); sleep 33 & exec "$0" -c "$1"', sys.executable, THREADED],
    start_new_session=True,
)
def first_arg(pid):  # "" for a process between fork and exec (or gone): not there yet
    try:
        with open(f"/proc/{pid}/cmdline") as f:
            args = f.read().split("\0")
    except OSError:
        return ""
    return args[1] if len(args) > 1 else ""
walked = []
try:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # until the daemon, the job and the thread's child run
        table = sorted(p.pid for p in killtree.session_processes(proc.pid, None))
        names = sorted(first_arg(pid) for pid in table)
        if names == ["-c", "31", "32", "33"]:
            break
        time.sleep(0.01)
    walked = killtree.session_processes(proc.pid, None, reaper=True)
finally:  # whatever happened, nothing of the scenario outlives it (its sleeps hold our pipes)
    killtree.kill_now(killtree.session_processes(proc.pid, None, reaper=True))
    proc.wait()
print(json.dumps({"table": table, "walked": sorted(p.pid for p in walked), "names": names}))
"""


def test_a_subreapers_walk_finds_what_the_whole_table_finds() -> None:
    """The worker (a subreaper, its program its child) walks its descendants through the
    kernel's `children` files instead of reading every process of the machine: the same
    processes, a setsid daemon and a child forked by another thread of a process among
    them."""
    if not os.path.exists(f"/proc/self/task/{os.getpid()}/children"):
        pytest.skip("no /proc/PID/task/TID/children here (CONFIG_PROC_CHILDREN)")
    run = subprocess.run(
        [sys.executable, "-c", WALK_SCENARIO],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["names"] == ["-c", "31", "32", "33"], out
    assert out["walked"] == out["table"]
