"""A state write whose directory fsync fails after the rename (an EIO from the disk).

The new file is already in place, read by every reader and by the next writer: the write
happened. Reporting it as failed would make a caller retry a change that is already made, or
undo one that stands (a `start` that kills the session it has just recorded). The writer
logs that the change may not survive a crash of the machine and goes on."""

from __future__ import annotations

from pathlib import Path

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
