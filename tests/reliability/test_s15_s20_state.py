"""Scenarios S15-S20: state and filesystem faults (reliability.md section 4.C)."""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import json
import os
import socket
import stat
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.conftest import (
    agentty,
    agentty_as_nobody,
    agentty_json,
    alive_of_home,
    gone,
    raw_records,
    record,
    run_env,
    sigkill,
    start,
    wait_until,
    with_failpoints,
    write_private,
)


def _two_live(home: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    a = start("--", "sh", "-c", "echo A-alive; exec sleep 1000000")
    b = start("--", "sh", "-c", "echo B-alive; exec sleep 1000000")
    return a, b


@pytest.mark.parametrize("kind", ["empty", "truncated", "random", "wrong_shape"])
def test_s15_corrupt_sessions_json(agentty_home: Path, kind: str) -> None:
    a, b = _two_live(agentty_home)
    state = agentty_home / "sessions.json"
    good = state.read_bytes()
    corrupt = {
        "empty": b"",
        "truncated": good[: len(good) // 2],
        "random": os.urandom(512),
        "wrong_shape": json.dumps([{"id": a["id"]}]).encode(),
    }[kind]
    write_private(state, corrupt)
    status = agentty("status", "--json")
    if status.returncode != 0:  # a clear error naming the file ...
        assert "sessions.json" in status.stderr and status.stderr.count("\n") == 1
    # ... and a write recovers: the file is moved aside and rebuilt from the live workers.
    c = start("--", "sleep", "1000000")
    listed = {s["id"]: s["status"] for s in agentty_json("status")["sessions"]}
    assert listed.get(a["id"]) == "running" and listed.get(b["id"]) == "running", listed
    assert listed.get(c["id"]) == "running"
    assert list(agentty_home.glob("sessions.json.corrupt-*")), "corrupt file not kept aside"
    assert "A-alive" in agentty("get", "--session", a["id"], check=True).stdout
    assert "B-alive" in agentty("get", "--session", b["id"], check=True).stdout
    agentty("kill", "--session", a["id"], check=True)
    assert record(a["id"])["status"] == "exited"


@pytest.mark.parametrize("junk", ["null", "duplicate", "5000 digits"])
def test_one_junk_entry_does_not_hide_every_other_session(agentty_home: Path, junk: str) -> None:
    """A `null` in the list, or a record twice, set the whole file aside as corrupt: the
    ended sessions' history vanished from every command (the live ones came back from
    their workers), their logs left for nobody (an attacker's round). Junk that holds no
    session is dropped; a later copy of a record is skipped by readers, said by `doctor`
    and removed by `gc`; nothing else changes."""
    ended = start("--", "sh", "-c", "echo ENDED-EARLIER")
    agentty("wait", "-s", ended["id"], "--exit")
    live = start("--", "sh", "-c", "echo LIVE; exec sleep 1000000")
    state = agentty_home / "sessions.json"
    doc = json.loads(state.read_bytes())
    extra: object = None if junk == "null" else dict(doc["sessions"][0], name="a-copy")
    if junk == "5000 digits":  # (past Python's int conversion limit: a ValueError)
        extra = {"id": "deadbeef", "status": "exited", "exitCode": 0, "name": "a-copy"}
    doc["sessions"].append(extra)
    edited = json.dumps(doc)
    if junk == "5000 digits":
        edited = edited.replace('"exitCode": 0, "name": "a-copy"', f'"exitCode": {"9" * 5000}')
    write_private(state, edited.encode())
    listed = [(s["id"], s["status"]) for s in agentty_json("status")["sessions"]]
    assert listed == [(ended["id"], "exited"), (live["id"], "running")], listed
    assert "ENDED-EARLIER" in agentty("get", "-s", ended["id"], check=True).stdout
    assert agentty("get", "-s", "a-copy").returncode == 2  # (skipped: not a session)
    doctor = agentty("doctor")
    said = {"null": "#3: not an object", "duplicate": f"#3: a later record of {ended['id']}"}
    assert said.get(junk, "#3: exitCode") in doctor.stdout, doctor.stdout
    if junk != "null":
        agentty("gc", "--older-than", "3600", check=True)  # (removes what is skipped only)
        kept = json.loads(state.read_bytes())["sessions"]
        assert [r["id"] for r in kept] == [ended["id"], live["id"]], kept
    start("--", "true")  # a write: the list as it was, plus the new session
    stored = json.loads(state.read_bytes())["sessions"]
    assert [r["id"] for r in stored][:2] == [ended["id"], live["id"]], stored
    assert None not in stored
    assert not list(agentty_home.glob("sessions.json.corrupt-*"))


def test_s16_file_from_a_future_version(agentty_home: Path) -> None:
    a = start("--", "sh", "-c", "echo A-alive; exec sleep 1000000")
    state = agentty_home / "sessions.json"
    original = state.read_bytes()
    doc = json.loads(original)
    future = dict(doc, schema_version=99, futureTop={"x": 1})
    future["sessions"] = [dict(r, futureField=[1, 2]) for r in doc["sessions"]]
    write_private(state, json.dumps(future).encode())
    planted = state.read_bytes()
    # Reads that can be served work.
    assert agentty("status").returncode == 0
    assert "A-alive" in agentty("get", "--session", a["id"], check=True).stdout
    # Any write is refused, and the file is left byte for byte.
    refused = agentty("start", "--", "sleep", "1000000")
    assert refused.returncode != 0
    assert "newer agentty" in refused.stderr and "upgrade" in refused.stderr
    assert "schema 99" in refused.stderr
    assert state.read_bytes() == planted
    # Same version with unknown fields: they survive a rewrite.
    same = dict(doc, futureTop={"x": 1})
    same["sessions"] = [dict(r, futureField=[1, 2]) for r in doc["sessions"]]
    write_private(state, json.dumps(same).encode())
    b = start("--", "sleep", "1000000")
    after = json.loads(state.read_bytes())
    assert after["futureTop"] == {"x": 1}
    old = next(r for r in after["sessions"] if r["id"] == a["id"])
    assert old["futureField"] == [1, 2]
    assert any(r["id"] == b["id"] for r in after["sessions"])


@pytest.mark.parametrize("point", ["state.after_tmp_write", "state.before_replace"])
def test_s17_enospc_during_a_state_write(agentty_home: Path, point: str) -> None:
    a = start("--", "sleep", "1000000")
    state = agentty_home / "sessions.json"
    digest = hashlib.sha256(state.read_bytes()).hexdigest()
    proc = run_env(["start", "--", "sleep", "1000000"], with_failpoints(f"{point}=raise:ENOSPC"))
    assert proc.returncode == 1, proc.stderr
    assert "no space left on device" in proc.stderr.lower() and "sessions.json" in proc.stderr
    assert proc.stderr.count("\n") == 1
    assert hashlib.sha256(state.read_bytes()).hexdigest() == digest
    assert list(agentty_home.glob(".sessions.json.*.tmp")) == []
    assert {p.pid for p in alive_of_home(agentty_home)} <= {a["pid"], a["workerPid"]}
    assert len(raw_records(agentty_home)) == 1


def test_s17_start_that_cannot_persist_kills_what_it_spawned(agentty_home: Path) -> None:
    # The worker fails right after spawning (an ENOSPC where it records the program).
    proc = run_env(
        ["start", "--", "sleep", "1000000"], with_failpoints("worker.after_bind=raise:ENOSPC")
    )
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.count("\n") == 1
    (rec,) = raw_records(agentty_home)
    assert rec["status"] in ("failed", "lost")
    wait_until(lambda: alive_of_home(agentty_home) == [])
    assert list(agentty_home.glob(".sessions.json.*.tmp")) == []


def test_s18_unwritable_or_lockless_home(
    agentty_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess

    from tests.reliability.conftest import NOBODY

    # (a) A read-only home, as a non-root user (root ignores modes).
    ro = Path("/tmp") / f"at-ro-{os.getpid()}"
    ro.mkdir(mode=0o500)
    os.chown(ro, 65534, 65534)
    try:
        proc = agentty_as_nobody(ro, "start", "--", "sleep", "1000000")
        assert proc.returncode == 1, proc.stderr
        assert proc.stderr.startswith("agentty: error: ") and proc.stderr.count("\n") == 1
        assert str(ro) in proc.stderr
        assert list(ro.iterdir()) == []
    finally:
        os.chmod(ro, 0o700)
        subprocess.run(["rm", "-rf", str(ro)], check=False)
    # (b) EACCES on the lock: the lock file belongs to someone else, mode 0600.
    home = Path("/tmp") / f"at-lk-{os.getpid()}"
    home.mkdir(mode=0o700)
    try:
        subprocess.run([*NOBODY, "true"], check=True)
        os.chown(home, 65534, 65534)
        lock = home / "sessions.json.lock"
        lock.write_bytes(b"")
        lock.chmod(0o600)  # owned by root: nobody cannot open it
        proc = agentty_as_nobody(home, "start", "--", "sleep", "1000000")
        assert proc.returncode == 1, proc.stderr
        assert "sessions.json.lock" in proc.stderr and proc.stderr.count("\n") == 1
        assert not (home / "sessions.json").exists()
        assert sorted(p.name for p in home.iterdir() if p.is_file()) == ["sessions.json.lock"]
    finally:
        subprocess.run(["rm", "-rf", str(home)], check=False)
    # (c) flock -> ENOSYS: fail closed, no soft-lock fallback, nothing written.
    import fcntl

    from agentty_core.errors import AgenttyError
    from agentty_core.paths import Home
    from agentty_core.state.store import StateStore

    def no_flock(fd: int, op: int) -> None:
        raise OSError(errno.ENOSYS, "Function not implemented")

    monkeypatch.setattr(fcntl, "flock", no_flock)
    store = StateStore(Home.resolve())
    with pytest.raises(AgenttyError):
        store.add({"id": "0123abcd", "status": "exited"})
    assert not (agentty_home / "sessions.json").exists()


@pytest.mark.parametrize("what", ["socket", "directory"])
def test_s19_socket_deleted_under_a_live_worker(agentty_home: Path, what: str) -> None:
    rec = start("--", "sh", "-c", "echo still-here; exec sleep 1000000")
    agentty("wait", "--text", "still-here", check=True)
    sock = Path(rec["socket"])
    if what == "socket":
        sock.unlink()
    else:
        sock.unlink()
        sock.parent.rmdir()
    assert record(rec["id"])["status"] == "running"  # identity alive: not declared dead
    got = agentty("get", "--session", rec["id"])
    if got.returncode == 0:
        assert "still-here" in got.stdout
        assert stat.S_ISSOCK(os.lstat(sock).st_mode)
    else:
        assert f"socket of session {rec['id']} is missing; worker alive" in got.stderr
    kill = agentty("kill", "--session", rec["id"], "--timeout", "0.5")
    assert kill.returncode == 0, kill.stderr
    wait_until(lambda: alive_of_home(agentty_home) == [])


def test_s20_stale_socket_and_lookalikes(agentty_home: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    victim.chmod(0o644)
    stale = start("--", "sleep", "1000000")
    looks = {
        kind: start("--", "sleep", "1000000") for kind in ("file", "symlink", "fifo", "foreign")
    }
    for rec in [stale, *looks.values()]:
        sigkill(rec["workerPid"])
        pid: int = rec["pid"]
        wait_until(functools.partial(gone, pid))
    for kind, rec in looks.items():
        path = Path(rec["socket"])
        path.unlink()
        if kind == "file":
            path.write_text("not a socket")
        elif kind == "symlink":
            path.symlink_to(victim)
        elif kind == "fifo":
            os.mkfifo(path, 0o600)
        else:
            s = socket.socket(socket.AF_UNIX)
            s.bind(str(path))
            s.close()
            os.chown(path, 65534, 65534)
    before = {k: os.lstat(r["socket"]) for k, r in looks.items()}
    assert stat.S_ISSOCK(os.lstat(stale["socket"]).st_mode)
    agentty("status", check=True)
    agentty("start", "--", "sleep", "1000000", check=True)
    agentty("gc", check=True)
    assert not os.path.lexists(stale["socket"]), "stale socket of a dead worker not removed"
    for kind, rec in looks.items():
        st = os.lstat(rec["socket"])
        assert (st.st_ino, st.st_mode, st.st_uid) == (
            before[kind].st_ino,
            before[kind].st_mode,
            before[kind].st_uid,
        ), kind
    assert victim.read_text() == "precious"
    assert stat.S_IMODE(victim.stat().st_mode) == 0o644


def test_kill_under_a_held_lock_says_what_the_worker_knows(agentty_home: Path) -> None:
    """The state lock held (or a full disk): the worker cannot write the program's exit.
    `kill` of a program that exited by itself said "killed ... (exit code None)", exit 0,
    and --json "running"; of a running one, exitCode null. The worker's word wins now."""
    from tests.reliability.conftest import state_lock

    done = start("--", "sh", "-c", "read x; exit 5")
    running = start("--", "sh", "-c", "exec sleep 1000")
    with state_lock(agentty_home):
        agentty("text", "-s", done["id"], "--enter", "go", check=True)
        waited = agentty("wait", "-s", done["id"], "--exit", "--timeout", "10")
        assert waited.returncode == 0 and "[exited: code 5]" in waited.stdout
        refused = agentty("kill", "-s", done["id"])
        assert refused.returncode == 1
        assert refused.stderr == f"agentty: error: session {done['id']} already exited (code 5)\n"
        killed = agentty_json("kill", "-s", running["id"])
        assert (killed["status"], killed["signal"]) == ("exited", "SIGHUP"), killed
        # Killed once, it is ended: a second kill said "killed" again, exit 0 (the worker
        # awaited its finished kill once more) while the exit was not recorded.
        again = agentty("kill", "-s", running["id"])
        assert again.returncode == 1, again.stdout
        message = f"agentty: error: session {running['id']} already exited (signal SIGHUP)\n"
        assert again.stderr == message
    wait_until(lambda: record(done["id"])["exitCode"] == 5)  # written once the lock is free


def test_kill_and_wait_under_a_held_lock_are_answered_once_the_end_is_saved(
    agentty_home: Path,
) -> None:
    """The state lock held: the worker cannot write the exit into the record, but the final
    screen it saved first tells every reader. `kill` (`--timeout 1` or not) and `wait
    --exit` still waited for the record for the worker's first 5 s of tries; they are
    answered once the screen is saved now, and the record is written when the lock is free.
    (The bound below is that first try's, not a speed target: a loaded machine kills in a
    fraction of it.)"""
    from agentty_core.worker.lifecycle import EXIT_FIRST_TRY
    from tests.reliability.conftest import state_lock

    running = start("--", "sh", "-c", "exec sleep 1000")
    reading = start("--", "sh", "-c", "read x; exit 5")
    within = EXIT_FIRST_TRY - 1
    with state_lock(agentty_home):
        killed = agentty_json("kill", "-s", running["id"], "--timeout", "1", timeout=within)
        assert (killed["status"], killed["signal"]) == ("exited", "SIGHUP"), killed
        agentty("text", "-s", reading["id"], "--enter", "go", check=True)
        waited = agentty("wait", "-s", reading["id"], "--exit", "--timeout", "30", timeout=within)
        assert waited.returncode == 0 and "[exited: code 5]" in waited.stdout
        listed = {s["id"]: s for s in agentty_json("status")["sessions"]}
        assert listed[running["id"]]["status"] == "exited"  # (from the final screen)
        assert listed[reading["id"]]["exitCode"] == 5
        assert _stored(agentty_home, running["id"])["status"] == "running"  # not yet
    wait_until(lambda: _stored(agentty_home, running["id"])["status"] == "exited")
    wait_until(lambda: _stored(agentty_home, reading["id"])["exitCode"] == 5)


def _stored(home: Path, session_id: str) -> dict[str, Any]:
    return next(rec for rec in raw_records(home) if rec["id"] == session_id)


def test_a_corrupt_list_is_rebuilt_with_a_worker_whose_socket_was_removed(
    agentty_home: Path,
) -> None:
    """The rebuild asked only the workers behind socket files: a live worker whose file was
    removed was dropped for good, its program then listed as an orphan (and ended by
    `orphans --kill`). It is found above its program, told to bind again, and asked."""
    a = start("--name", "a", "--", "sh", "-c", "exec sleep 986")
    b = start("--name", "b", "--", "sh", "-c", "exec sleep 985")
    (agentty_home / "sockets" / f"{a['id']}.sock").unlink()
    write_private(agentty_home / "sessions.json", b"junk")
    listed = {s["id"]: s["status"] for s in agentty_json("status")["sessions"]}
    assert listed == {a["id"]: "running", b["id"]: "running"}
    assert agentty_json("orphans")["orphans"] == []
    assert agentty("get", "-s", "a").returncode == 0
    for rec in (a, b):
        agentty("kill", "-s", rec["id"], check=True)


def test_a_stopped_worker_is_listed_again_and_can_be_ended(agentty_home: Path) -> None:
    """A worker stopped while the corrupt list is rebuilt does not answer: it was left out,
    and its session could be reached by nobody (and its program looked orphaned). It is
    listed with what is known of it, its program is no orphan, and `kill` ends it."""
    import signal

    a = start("--name", "a", "--", "sh", "-c", "exec sleep 984")
    os.kill(a["workerPid"], signal.SIGSTOP)
    try:
        write_private(agentty_home / "sessions.json", b"junk")
        (listed,) = agentty_json("status")["sessions"]
        assert (listed["id"], listed["status"], listed["workerPid"]) == (
            a["id"],
            "running",
            a["workerPid"],
        )
        assert agentty_json("orphans")["orphans"] == []
        agentty("kill", "-s", a["id"], check=True)
    finally:
        with contextlib.suppress(OSError):
            os.kill(a["workerPid"], signal.SIGCONT)
    wait_until(lambda: gone(a["workerPid"]) and gone(a["pid"]))


@pytest.mark.parametrize("point", ["state.after_tmp_write", "state.before_replace"])
def test_s17_gc_that_cannot_write_the_list_leaves_the_active_pointer(
    agentty_home: Path, point: str
) -> None:
    """`gc` removes the pointer to a session it collects, then writes the list: when the
    list could not be written (a full disk), the session was still listed but no longer
    the default of `get` and `wait`; the pointer is put back with the list unchanged."""
    rec = start("--", "true")
    wait_until(lambda: raw_records(agentty_home)[0]["status"] == "exited")
    active = agentty_home / "active"
    assert active.read_text() == rec["id"] + "\n"
    proc = run_env(["gc"], with_failpoints(f"{point}=raise:ENOSPC"))
    assert proc.returncode == 1 and "no space left on device" in proc.stderr.lower()
    assert [r["id"] for r in raw_records(agentty_home)] == [rec["id"]]
    assert active.read_text() == rec["id"] + "\n"
    assert list(agentty_home.glob(".*.tmp")) == []


def test_reading_commands_leave_a_missing_home_unmade(tmp_path: Path) -> None:
    """`AGENTTY_HOME` named with a typo, or before the first `start`: `status`, `get`, `gc`,
    `kill --all` made it, and every directory above it (`mkdir -p`); they find nothing now
    and make nothing. The first `start` makes it, private."""
    home = tmp_path / "typo" / "home"
    env = dict(os.environ, AGENTTY_HOME=str(home), AGENTTY_SPAWNER="0")  # (none to reap)
    assert json.loads(agentty("status", "--json", env=env, check=True).stdout)["sessions"] == []
    assert agentty("get", env=env).returncode == 2  # no active session
    for words in (["gc"], ["kill", "--all"], ["orphans"], ["logs"]):
        agentty(*words, env=env)
    assert not (tmp_path / "typo").exists()
    started = agentty("start", "--", "true", env=env, check=True)
    assert started.stdout.strip()
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    agentty("wait", "--exit", env=env, check=True)


@pytest.mark.parametrize("command", [["status"], ["get"], ["start", "--", "true"], ["kill"]])
def test_a_home_below_a_file_is_one_line_not_a_traceback(
    tmp_path: Path, command: list[str]
) -> None:
    """`AGENTTY_HOME=FILE/sub`: the path walk met a file where a directory must be (lstat
    said ENOTDIR, raised as it was); `AGENTTY_HOME=FILE` itself was already one line."""
    blocker = tmp_path / "afile"
    blocker.write_text("")
    env = dict(os.environ, AGENTTY_HOME=str(blocker / "sub" / "home"))
    proc = agentty(*command, env=env)
    assert proc.returncode == 1
    assert proc.stderr == f"agentty: error: {blocker} is not a directory\n"
    doctor = agentty("doctor", env=env)
    assert f"fix: move {blocker} away, or set AGENTTY_HOME elsewhere" in doctor.stdout
