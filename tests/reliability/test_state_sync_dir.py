"""A state write whose directory fsync fails after the rename (an EIO from the disk).

The new file is already in place, read by every reader and by the next writer: the write
happened. Reporting it as failed would make a caller retry a change that is already made, or
undo one that stands (a `start` that kills the session it has just recorded). The writer
logs that the change may not survive a crash of the machine and goes on."""

from __future__ import annotations

import os
from pathlib import Path

from tests.helpers.cli import wait_until
from tests.helpers.spawner import gone
from tests.reliability.conftest import (
    agentty_json,
    raw_records,
    run_env,
    start,
    with_failpoints,
)


def fail_sync() -> dict[str, str]:
    """The environment of a command whose directory fsyncs fail (read when called: the
    per-test home is set by then)."""
    return with_failpoints("state.sync_dir=raise:EIO")


def test_start_whose_directory_sync_fails_still_started(agentty_home: Path) -> None:
    proc = run_env(["start", "--json", "--", "sleep", "1000000"], fail_sync())
    assert proc.returncode == 0, proc.stderr
    (rec,) = raw_records(agentty_home)  # recorded once: nothing retried or undone
    listed = {s["id"]: s["status"] for s in agentty_json("status")["sessions"]}
    assert listed == {rec["id"]: "running"}
    assert (agentty_home / "active").read_text().strip() == rec["id"]
    # Durability in doubt is said, not hidden: by whoever synced the directory. The intent
    # record leaves that to the running record's write, which the worker makes: its log.
    said = proc.stderr + Path(rec["log"]).read_text(errors="replace")
    assert "may not survive" in said


def test_kill_and_gc_whose_directory_sync_fails_still_happened(agentty_home: Path) -> None:
    a = start("--", "sleep", "1000000")
    killed = run_env(["kill", "--session", a["id"]], fail_sync())
    assert killed.returncode == 0, killed.stderr
    (rec,) = raw_records(agentty_home)
    assert rec["status"] == "exited"
    gc = run_env(["gc"], fail_sync())
    assert gc.returncode == 0, gc.stderr
    assert raw_records(agentty_home) == []


def test_the_exit_record_is_synced_after_the_kill_is_answered(agentty_home: Path) -> None:
    # The worker syncs the directory for its exit record once its answers are out (a
    # `kill` does not wait for that fsync), but it does sync it before it exits: its log
    # says the (failing) sync once, after the session ended.
    proc = run_env(["start", "--json", "--", "sleep", "1000000"], fail_sync())
    assert proc.returncode == 0, proc.stderr
    rec = agentty_json("status")["sessions"][0]
    killed = run_env(["kill", "--session", rec["id"]], dict(os.environ))
    assert killed.returncode == 0, killed.stderr
    log = Path(rec["log"])
    wait_until(lambda: gone(rec["workerPid"]), timeout=15)
    lines = log.read_text().splitlines()
    ended = next(i for i, line in enumerate(lines) if f"session {rec['id']} ended" in line)
    assert sum("may not survive" in line for line in lines[ended:]) == 1
    assert raw_records(agentty_home)[0]["status"] == "exited"
