"""Issue 16, items 2 and 4: a failed `start` leaves nothing running, and `kill` ends a
session whose worker stopped answering (stopped, pinned, or its connection slots held)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import psutil
import pytest

from agentty_core.state.store import LOCK_TIMEOUT
from tests.helpers.cli import signals_default
from tests.reliability.conftest import (
    AGENTTY,
    agentty,
    alive_of_home,
    gone,
    of_session,
    raw_records,
    run_env,
    start,
    wait_until,
    with_failpoints,
)


def _stored_status(home: Path) -> str | None:
    try:
        recs = raw_records(home)
    except (OSError, ValueError):
        return None
    return str(recs[0]["status"]) if recs else None


def test_start_that_fails_to_activate_leaves_nothing_running(agentty_home: Path) -> None:
    """The lock is taken by someone else right after the worker wrote its running record:
    `start` either succeeds with a running active session, or fails and nothing runs."""
    held = threading.Event()
    released = threading.Event()

    def hold_lock() -> None:
        wait_until(lambda: _stored_status(agentty_home) == "running", timeout=30, interval=0.005)
        fd = os.open(agentty_home / "sessions.json.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            held.set()
            time.sleep(LOCK_TIMEOUT + 1.0)  # the fault itself: a lock held past every timeout
        finally:
            os.close(fd)
            released.set()

    holder = threading.Thread(target=hold_lock, daemon=True)
    holder.start()
    # The worker pauses between its running record and its `ready`: the lock is taken then.
    proc = run_env(
        ["start", "--json", "--", "sleep", "1000000"],
        with_failpoints("worker.before_ready=sleep:1.0"),
        timeout=90,
    )
    holder.join(timeout=30)
    assert held.is_set() and released.is_set()
    (rec,) = raw_records(agentty_home)
    if proc.returncode == 0:
        assert rec["status"] == "running", rec
        assert (agentty_home / "active").read_text().strip() == rec["id"]
        assert agentty("get", "--session", rec["id"]).returncode == 0
    else:
        # A failure leaves nothing of the session running, and its record says so.
        wait_until(lambda: alive_of_home(agentty_home) == [], timeout=15)
        assert rec["status"] not in ("running", "starting"), rec


def _assert_session_ended(home: Path, rec: dict[str, object]) -> None:
    sid = str(rec["id"])
    worker, program = rec["workerPid"], rec["pid"]
    assert isinstance(worker, int) and isinstance(program, int)
    wait_until(lambda: gone(worker) and gone(program), timeout=15)
    assert of_session(home, sid) == []
    (stored,) = raw_records(home)
    assert stored["status"] not in ("running", "starting"), stored
    # And agentty agrees: nothing left to kill.
    assert agentty("kill", "--session", sid, "--timeout", "0.2").returncode in (0, 1)
    assert of_session(home, sid) == []


def test_kill_ends_a_stopped_worker_and_its_program(agentty_home: Path) -> None:
    rec = start("--", "sleep", "1000000")
    os.kill(rec["workerPid"], signal.SIGSTOP)
    try:
        killed = agentty("kill", "--session", rec["id"], "--timeout", "0.5", timeout=60)
    finally:
        if not gone(rec["workerPid"]):
            os.kill(rec["workerPid"], signal.SIGCONT)
    assert killed.returncode == 0, killed.stderr
    _assert_session_ended(agentty_home, rec)


def test_kill_ends_a_worker_pinned_by_a_regex(agentty_home: Path) -> None:
    rec = start("--", "sh", "-c", f"echo {'a' * 33}!; exec sleep 1000000")
    agentty("wait", "--session", rec["id"], "--text", "aaa!", check=True)
    waiter = subprocess.Popen(
        [AGENTTY, "wait", "--session", rec["id"], "--regex", "(a+)+$", "--timeout", "300"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        killed = agentty("kill", "--session", rec["id"], "--timeout", "0.5", timeout=60)
        assert killed.returncode == 0, killed.stderr
        _assert_session_ended(agentty_home, rec)
        _out, err = waiter.communicate(timeout=30)
        assert waiter.returncode != 0, err
    finally:
        if waiter.poll() is None:
            waiter.kill()
            waiter.wait()


def test_a_runaway_regex_wait_is_cancelled_and_the_worker_keeps_answering(
    agentty_home: Path,
) -> None:
    rec = start("--", "sh", "-c", f"echo {'a' * 33}!; exec sleep 1000000")
    agentty("wait", "--session", rec["id"], "--text", "aaa!", check=True)
    waited = agentty(
        "wait", "--session", rec["id"], "--regex", "(a+)+$", "--timeout", "60", timeout=60
    )
    assert waited.returncode not in (0, 3), waited.stderr  # an error, not a match or a timeout
    assert "regex" in waited.stderr, waited.stderr
    assert len(waited.stderr.strip().splitlines()) == 1, waited.stderr
    got = agentty("get", "--session", rec["id"], timeout=10)
    assert got.returncode == 0 and "aaa!" in got.stdout, got.stderr
    # A well-behaved regex still works on the same worker.
    agentty("wait", "--session", rec["id"], "--regex", "a{3}!$", "--timeout", "5", check=True)


@pytest.mark.parametrize("how", ["idle", "partial"])
def test_held_connection_slots_are_reclaimed(agentty_home: Path, how: str) -> None:
    """64 clients that connect and say nothing (or half a request): a new client is served."""
    rec = start("--", "sh", "-c", "echo ready; exec sleep 1000000")
    path = rec["socket"]
    hogs: list[socket.socket] = []
    try:
        for _ in range(70):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(path)
            hogs.append(sock)
            if how == "partial":
                # A request that never completes (refused as it comes, past the worker's
                # limit: "busy" and closed, before the send on a loaded machine; CI).
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    sock.sendall(b'{"method": "pi')
        got = agentty("get", "--session", rec["id"], timeout=30)
        assert got.returncode == 0, got.stderr
        assert "ready" in got.stdout
        killed = agentty("kill", "--session", rec["id"], "--timeout", "0.5", timeout=60)
        assert killed.returncode == 0, killed.stderr
        _assert_session_ended(agentty_home, rec)
    finally:
        for sock in hogs:
            sock.close()


@pytest.mark.parametrize("spawner", ["0", "1"])
@pytest.mark.parametrize("moment", ["worker.after_spawn", "worker.before_ready"])
def test_an_interrupted_start_leaves_nothing(agentty_home: Path, spawner: str, moment: str) -> None:
    """Ctrl-C while `start` waits for its worker (the program running, its record written
    or not): the session was left `lost`, or `exited` by SIGHUP, and the active pointer on
    it. Nothing of it stays now, and the pointer names the session it named before."""
    env = dict(os.environ, AGENTTY_SPAWNER=spawner)
    before = start("--", "sleep", "1001")
    if spawner == "1":
        _warm(agentty_home, env)
        agentty("attach", before["id"], check=True)
    proc = _starting(env, f"{moment}=sleep:5", "1002")
    wait_until(lambda: _sleeps(agentty_home, "1002"))
    if moment == "worker.before_ready":
        wait_until(lambda: "running" in [r["status"] for r in raw_records(agentty_home)[1:]])
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert (proc.returncode, out) == (130, "")
    wait_until(lambda: not _sleeps(agentty_home, "1002"))
    assert [r["id"] for r in raw_records(agentty_home)] == [before["id"]]
    assert (agentty_home / "active").read_text().strip() == before["id"]
    logs = {p.name for p in (agentty_home / "logs").iterdir()} - {"spawner.log"}
    assert logs == {f"{before['id']}.log"}
    assert {p.name for p in (agentty_home / "sockets").iterdir()} - {"spawner.sock"} == {
        f"{before['id']}.sock"
    }


def _sleeps(home: Path, seconds: str) -> bool:
    """`sleep SECONDS` runs in the home (the program, not a command line that names it)."""
    for proc in alive_of_home(home):
        with contextlib.suppress(psutil.Error):
            if proc.name() == "sleep" and proc.cmdline()[1:] == [seconds]:
                return True
    return False


@pytest.mark.parametrize("spawner", ["0", "1"])
def test_a_lock_held_over_the_running_record_fails_the_start_in_its_words(
    agentty_home: Path, spawner: str
) -> None:
    """The program runs; the running record waits for the lock, which another process holds
    past its timeout. `start` said "worker failed: ..." (the lane) or that the worker was not
    ready (the direct path, whose wait ran out with the lock's), and the worker's log had a
    traceback. The lock's own message now, one line in the log; nothing runs on."""
    from tests.reliability.conftest import state_lock

    env = dict(os.environ, AGENTTY_SPAWNER=spawner)
    if spawner == "1":
        _warm(agentty_home, env)
    proc = _starting(env, "worker.after_spawn=sleep:1", "1003")
    wait_until(lambda: _sleeps(agentty_home, "1003"))
    (rec,) = raw_records(agentty_home)  # the intent
    log = agentty_home / "logs" / f"{rec['id']}.log"
    with state_lock(agentty_home):  # let go once the worker gave up: its start marks it failed
        wait_until(lambda: "timed out after 10s" in log.read_text(), timeout=30)
    out, err = proc.communicate(timeout=60)
    assert (proc.returncode, out) == (1, ""), err
    assert (
        err.startswith("agentty: error: timed out after 10s waiting for ") and err.count("\n") == 1
    )
    wait_until(lambda: not _sleeps(agentty_home, "1003"))
    assert "Traceback" not in log.read_text()
    assert raw_records(agentty_home)[0]["status"] == "failed"


def test_an_interrupted_start_points_back_only_at_a_session_still_there(
    agentty_home: Path,
) -> None:
    """The session active before the start was removed meanwhile: the pointer named it
    again, a session that no longer exists."""
    before = start("--", "sleep", "1004")
    proc = _starting(dict(os.environ), "worker.before_ready=sleep:5", "1005")
    wait_until(lambda: (agentty_home / "active").read_text().strip() != before["id"])
    agentty("kill", "-s", before["id"], check=True)
    agentty("gc", check=True)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 130
    assert raw_records(agentty_home) == [] and not (agentty_home / "active").exists()


def _warm(home: Path, env: dict[str, str]) -> None:
    """The home's spawner ready (launched by a start, whose session is then collected)."""
    from tests.helpers.spawner import ready_spawner

    run_env(["start", "--", "true"], env)
    ready_spawner(home)
    agentty("gc", check=True)


def _starting(env: dict[str, str], failpoints: str, seconds: str) -> subprocess.Popen[str]:
    """`agentty start -- sleep SECONDS` under `failpoints`, not waited for."""
    return subprocess.Popen(
        [AGENTTY, "start", "--", "sleep", seconds],
        env={**env, "AGENTTY_FAILPOINTS": failpoints},
        preexec_fn=signals_default,  # interrupted with SIGINT by the tests
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("spawner", ["0", "1"])
def test_a_start_interrupted_once_its_program_runs_finishes(
    agentty_home: Path, spawner: str
) -> None:
    """Ctrl-C after the worker said the program runs, while `start` reports it: it exited
    130, often with the id printed, and the session ran on, active, told to nobody or told
    as failed. Past that point the start finishes: the id, exit 0."""
    env = dict(os.environ, AGENTTY_SPAWNER=spawner)
    if spawner == "1":
        _warm(agentty_home, env)
    proc = _starting(env, "start.ready=sleep:3", "1006")
    wait_until(lambda: _statuses(agentty_home) == ["running"])
    wait_until(lambda: _sleeping(proc.pid))  # its answer read: at the failpoint
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    (rec,) = raw_records(agentty_home)
    assert (proc.returncode, out) == (0, rec["id"] + "\n"), err
    assert rec["status"] == "running" and _sleeps(agentty_home, "1006")
    assert (agentty_home / "active").read_text().strip() == rec["id"]
    agentty("kill", check=True)


def test_a_start_interrupted_just_after_its_intent_record_leaves_nothing(
    agentty_home: Path,
) -> None:
    """Between the intent record's write and the hand-over to the worker, Ctrl-C was not
    undone: the `starting` record stayed, and was shown `lost` from then on."""
    proc = _starting(dict(os.environ), "launcher.after_claim=sleep:5", "1007")
    wait_until(lambda: _statuses(agentty_home) == ["starting"])
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert (proc.returncode, out) == (130, "")
    assert raw_records(agentty_home) == []
    assert not _sleeps(agentty_home, "1007")
    assert {p.name for p in (agentty_home / "sockets").iterdir()} == set()


def _statuses(home: Path) -> list[object]:
    """The records' statuses, none before the first is written."""
    if not (home / "sessions.json").exists():
        return []
    return [r["status"] for r in raw_records(home)]


def _sleeping(pid: int) -> bool:
    """Is process `pid` in a sleep (`time.sleep`: a failpoint), not waiting on a descriptor?"""
    try:
        return Path(f"/proc/{pid}/wchan").read_text() == "hrtimer_nanosleep"
    except OSError:
        return False


@pytest.mark.parametrize("spawner", ["0", "1"])
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_start_ended_by_sigterm_or_sighup_is_undone_or_finishes_as_for_ctrl_c(
    agentty_home: Path, spawner: str, signum: int
) -> None:
    """A harness's timeout (SIGTERM) or a closed terminal (SIGHUP) ended `start` outright:
    exit 143 or 129 with no id, and the session ran on, active, told to nobody (or a `lost`
    record stayed). Before the program runs the start is undone, with 128+N; after, it
    finishes: the id, exit 0."""
    env = dict(os.environ, AGENTTY_SPAWNER=spawner)
    if spawner == "1":
        _warm(agentty_home, env)
    proc = _starting(env, "worker.before_ready=sleep:5", "1008")
    wait_until(lambda: _sleeps(agentty_home, "1008"))
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=30)
    assert (proc.returncode, out, err) == (128 + signum, "", "")
    wait_until(lambda: not _sleeps(agentty_home, "1008"))
    assert raw_records(agentty_home) == [] and not (agentty_home / "active").exists()

    proc = _starting(env, "start.ready=sleep:3", "1009")
    wait_until(lambda: _statuses(agentty_home) == ["running"])
    wait_until(lambda: _sleeping(proc.pid))
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=30)
    (rec,) = raw_records(agentty_home)
    assert (proc.returncode, out) == (0, rec["id"] + "\n"), err
    assert (agentty_home / "active").read_text().strip() == rec["id"]
    agentty("kill", check=True)


@pytest.mark.parametrize("spawner", ["0", "1"])
def test_a_start_interrupted_on_a_full_disk_says_what_it_left(
    agentty_home: Path, spawner: str
) -> None:
    """The undo of an interrupted start could not write (a full disk): it exited 130 without
    a word, its record left `lost` and active. Now one line says so, and what removes it."""
    from tests.reliability.test_worker_io_faults import _fill, tmpfs

    with tmpfs(agentty_home, agentty_home, "1m"):
        env = dict(os.environ, AGENTTY_SPAWNER=spawner)
        if spawner == "1":
            _warm(agentty_home, env)
        for _ in range(8):  # a list of more pages than the session's log frees
            run_env(["start", "--", "true"], env)
        proc = _starting(env, "worker.before_ready=sleep:5", "1010")
        wait_until(lambda: _sleeps(agentty_home, "1010"))
        filler = _fill(agentty_home)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert (proc.returncode, out) == (1, ""), err
        (rec,) = [r for r in raw_records(agentty_home) if r["argv"] == ["sleep", "1010"]]
        said = f"agentty: error: start interrupted; its session {rec['id']} could not be removed: "
        assert err.startswith(said) and err.endswith("; agentty gc removes it\n"), err
        assert "No space left on device" in err and err.count("\n") == 1, err
        assert not _sleeps(agentty_home, "1010")
        filler.unlink()
        agentty("gc", check=True)
        assert raw_records(agentty_home) == []
        assert not (agentty_home / "active").exists()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_start_interrupted_while_it_waits_for_the_lock_wrote_nothing_to_undo(
    agentty_home: Path, signum: int
) -> None:
    """Interrupted before its intent record (another process holds the state lock): its
    undo, timing out on the same lock, said it could not remove a session never written."""
    from tests.reliability.conftest import state_lock

    with state_lock(agentty_home):
        proc = _starting(dict(os.environ), "", "1011")
        wait_until(lambda: _waiting_for_lock(proc.pid))
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=30)
    assert (proc.returncode, out, err) == (128 + signum, "", "")
    assert not (agentty_home / "sessions.json").exists() or raw_records(agentty_home) == []


def _waiting_for_lock(pid: int) -> bool:
    """Is process `pid` sleeping between tries of a lock (filelock polls)?"""
    try:
        return Path(f"/proc/{pid}/wchan").read_text() == "hrtimer_nanosleep"
    except OSError:
        return False


def test_a_start_run_under_nohup_is_not_ended_by_sighup(agentty_home: Path) -> None:
    """SIGHUP ignored when `start` began (`nohup`): it undid the start and exited 129."""

    def ignore_hup() -> None:
        signals_default()
        signal.signal(signal.SIGHUP, signal.SIG_IGN)

    proc = subprocess.Popen(
        [AGENTTY, "start", "--", "sleep", "1012"],
        env={**os.environ, "AGENTTY_FAILPOINTS": "worker.before_ready=sleep:2"},
        preexec_fn=ignore_hup,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_until(lambda: _sleeps(agentty_home, "1012"))
    proc.send_signal(signal.SIGHUP)
    out, err = proc.communicate(timeout=30)
    (rec,) = raw_records(agentty_home)
    assert (proc.returncode, out) == (0, rec["id"] + "\n"), err
    agentty("kill", check=True)


@pytest.mark.parametrize("spawner", ["0", "1"])
def test_a_full_disk_at_the_running_record_leaves_the_active_pointer_as_it_was(
    agentty_home: Path, spawner: str
) -> None:
    """The pointer is written first, then the list (both or neither): a list that could not
    be written left the pointer naming the failed start, and the session active before was
    no longer the default of `text`, `get` and `kill`. The disk is filled while the program
    starts, to one page: the pointer's temporary file fits, the list's does not."""
    from tests.reliability.test_worker_io_faults import _fill, tmpfs

    with tmpfs(agentty_home, agentty_home, "1m"):
        env = dict(os.environ, AGENTTY_SPAWNER=spawner)
        if spawner == "1":
            _warm(agentty_home, env)
        for _ in range(8):  # a list of more than one page
            run_env(["start", "--", "true"], env)
        before = run_env(["start", "--", "sleep", "1012"], env)
        assert before.returncode == 0, before.stderr
        active = (agentty_home / "active").read_text()
        assert active == before.stdout
        proc = _starting(env, "worker.after_spawn=sleep:2", "1013")
        wait_until(lambda: _sleeps(agentty_home, "1013"))
        page = agentty_home / "page"
        page.write_bytes(b"\0" * 4096)
        filler = _fill(agentty_home)
        page.unlink()
        out, err = proc.communicate(timeout=60)
        filler.unlink()
        assert (proc.returncode, out) == (1, ""), err
        assert "No space left on device" in err and err.count("\n") == 1, err
        assert (agentty_home / "active").read_text() == active
        assert not list(agentty_home.glob(".active.*.tmp"))
