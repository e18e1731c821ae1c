"""The kill ladder never reaches beyond a session, whatever its target list says."""

from __future__ import annotations

import asyncio
import os
import subprocess
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
