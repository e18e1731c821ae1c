"""The warm spawner fails in every way a process can; `start` never fails or hangs for it.

Each fault is real: a stopped (SIGSTOP) or killed spawner, its socket removed, an impostor
listening on its path, a spawner killed in the middle of a request, an intermediate process
that cannot fork. Every `start` still succeeds (spawned directly after at most the client's
bounded wait), and a worker forked late for a caller that gave up exits on its own.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from agentty_core.client import Client
from agentty_core.launch import spawner_client
from tests.helpers.census import blocked_mask, processes_of_home
from tests.helpers.cli import agentty_json, wait_until
from tests.helpers.spawner import (
    forked,
    gone,
    helpers,
    makers,
    private_mib,
    ready_spawner,
    spares,
    spawner_info,
    start,
    warm,
)

pytestmark = pytest.mark.usefixtures("spawner_on")

STOP_BITS = (1 << (signal.SIGTERM - 1)) | (1 << (signal.SIGINT - 1))  # in `SigBlk`


def live_workers(home: Path) -> set[int]:
    """Worker pids of the home's running sessions, and the programs under them."""
    pids: set[int] = set()
    for rec in agentty_json("status")["sessions"]:
        if rec["status"] == "running":
            pids.update(p for p in (rec["workerPid"], rec["pid"]) if isinstance(p, int))
    return pids


def only_sessions_and_spawner(home: Path) -> bool:
    info = spawner_info(home)
    expected = live_workers(home) | ({info["pid"]} if info else set()) | helpers(home)
    return {p.pid for p in processes_of_home(str(home))} <= expected


def test_stopped_spawner_falls_back_and_its_late_worker_exits(agentty_home: Path) -> None:
    info = warm(agentty_home)
    os.kill(info["pid"], signal.SIGSTOP)
    try:
        rec = start("cat")  # the spawner holds the request: the client gives up on it
        assert not forked(rec)
    finally:
        os.kill(info["pid"], signal.SIGCONT)
    # It forks the worker it was asked for once it runs again; that worker finds its
    # spec pipe closed and exits, leaving no process behind.
    wait_until(lambda: only_sessions_and_spawner(agentty_home), timeout=30)
    assert forked(start("cat"))


def test_killed_spawner_falls_back_and_a_new_one_takes_over(agentty_home: Path) -> None:
    old = warm(agentty_home)
    os.kill(old["pid"], signal.SIGKILL)
    wait_until(lambda: gone(old["pid"]), timeout=15)
    assert agentty_json("status")["spawner"] is None  # its description is stale: not shown
    assert (agentty_home / "sockets" / "spawner.sock").exists()  # left behind, refused
    assert not forked(start("cat"))
    new = ready_spawner(agentty_home)
    assert new["pid"] != old["pid"]
    assert forked(start("cat"))


def test_removed_socket_falls_back_and_the_orphaned_spawner_exits(agentty_home: Path) -> None:
    old = warm(agentty_home)
    os.unlink(agentty_home / "sockets" / "spawner.sock")
    assert not forked(start("cat"))
    wait_until(lambda: gone(old["pid"]), timeout=30)  # nobody can reach it: it exits
    new = ready_spawner(agentty_home)
    assert new["pid"] != old["pid"]
    assert forked(start("cat"))


def test_killed_in_the_middle_of_a_request(agentty_home: Path) -> None:
    env = dict(os.environ, AGENTTY_FAILPOINTS="spawner.request=sigkill")
    start("cat", env=env)  # launches a spawner that dies on its first request
    info = ready_spawner(agentty_home)
    assert not forked(start("cat"))
    assert gone(info["pid"])


def test_intermediate_that_cannot_fork(agentty_home: Path) -> None:
    env = dict(os.environ, AGENTTY_FAILPOINTS="spawner.middle=exit:1")
    start("cat", env=env)
    info = ready_spawner(agentty_home)
    assert not forked(start("cat"))
    assert spawner_info(agentty_home) == info  # a refused request does not end it
    wait_until(lambda: only_sessions_and_spawner(agentty_home), timeout=30)


@pytest.mark.parametrize(
    ("slow", "caller"),
    [
        ("spare.request", "cli"),  # the spare answering
        ("spawner.middle", "cli"),  # a worker forked for the request
        ("spare.request", "library"),  # `Client.start` (spawner_client), not the lane
    ],
)
def test_a_slow_answer_is_waited_for_while_the_spawner_idles(
    agentty_home: Path, slow: str, caller: str
) -> None:
    """Once the spawner took a request, the answer is another process's to give: a loaded
    machine may delay it (here a second), and the caller waits for it rather than giving
    up on the idle spawner and starting the worker the slow way."""
    env = dict(os.environ, AGENTTY_FAILPOINTS=f"{slow}=sleep:1")
    start("cat", env=env)  # launches the spawner, slowed
    info = ready_spawner(agentty_home)
    if caller == "cli":
        rec = start("cat")
    else:
        wait_until(lambda: bool(spares(agentty_home)), timeout=30)
        rec = dict(Client().start(["cat"]))
    assert forked(rec)
    assert spawner_info(agentty_home) == info
    wait_until(lambda: only_sessions_and_spawner(agentty_home), timeout=30)


Behaviour = Callable[[socket.socket], None]


def _close(conn: socket.socket) -> None:
    conn.close()


def _garbage(conn: socket.socket) -> None:
    conn.recv(1 << 16)
    conn.sendall(b'{"ok": true, "pid": 1}\n')  # "forked", but no pidfd: not believed


def _never_answer(conn: socket.socket) -> None:
    conn.recv(1 << 16)
    threading.Event().wait(2.0)  # longer than the client's wait; then the test ends it


@pytest.fixture
def impostor(agentty_home: Path) -> Iterator[Callable[[Behaviour], None]]:
    """A listener on the spawner's path (as if wedged or hostile) serving one connection."""
    sockets = agentty_home / "sockets"
    sockets.mkdir(mode=0o700, exist_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(sockets / "spawner.sock"))
    listener.listen(4)
    threads: list[threading.Thread] = []

    def serve(behaviour: Behaviour) -> None:
        def run() -> None:
            conn, _ = listener.accept()
            with conn:
                behaviour(conn)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        threads.append(thread)

    yield serve
    for thread in threads:
        thread.join(timeout=10)
    listener.close()


@pytest.mark.parametrize("behaviour", [_close, _garbage, _never_answer])
def test_impostor_or_wedged_listener(
    agentty_home: Path, impostor: Callable[[Behaviour], None], behaviour: Behaviour
) -> None:
    # The home exists before the listener: the first start must not find it empty.
    impostor(behaviour)
    rec = start("cat")
    assert not forked(rec)
    assert psutil.Process(rec["workerPid"]).is_running()
    # The socket answered (badly): no spawner is launched over it.
    assert not (agentty_home / "spawner.json").exists()


def test_stop_ends_a_spawner_still_importing(agentty_home: Path) -> None:
    """The teardown's `stop` finds a spawner from the moment it holds the home's lock."""
    start("cat", env=dict(os.environ, AGENTTY_SPAWNER="0"))  # the home exists
    pid = spawner_client.launch(str(agentty_home))
    wait_until(lambda: (agentty_home / "spawner.json").exists() or gone(pid), timeout=30)
    assert spawner_client.stop(str(agentty_home))
    wait_until(lambda: gone(pid), timeout=15)


# ----------------------------------------------------------------- the spare worker


def one_spare(home: Path, *, settled: bool = True) -> int:
    """Wait for the spawner's spare (forked once it is idle) to wait for a request (named
    before it settles, a spare is not handed one yet: the spawner forks); its pid."""
    found: list[int] = []

    def there() -> bool:
        found[:] = spares(home)
        return len(found) == 1 and (not settled or _waits(found[0]))

    wait_until(there, timeout=30)
    return found[0]


def _waits(pid: int) -> bool:
    """Is process `pid` blocked reading its socket (a spare waiting for a request)?"""
    try:
        return Path(f"/proc/{pid}/wchan").read_text() == "unix_stream_read_generic"
    except OSError:
        return False  # gone (a spare let go for one that copies learned pages)


def test_the_spare_is_the_next_worker_and_a_new_one_follows(agentty_home: Path) -> None:
    warm(agentty_home)
    spare = one_spare(agentty_home)
    assert os.getsid(spare) == spare  # already in its own session, as a worker must be
    rec = start("cat")
    assert rec["workerPid"] == spare
    assert psutil.Process(spare).name() != "agentty-spare"  # a worker's name again
    assert one_spare(agentty_home) != spare


def test_starts_in_a_row_are_each_served_by_a_spare(agentty_home: Path) -> None:
    """The spare reads the request and closes its end: the spawner must not take that for
    a failed hand-over (it sent nothing more, yet an empty send after the whole request
    failed with EPIPE: spares were then off for 5 s, and it forked for the same caller)."""
    warm(agentty_home)
    start("cat")  # the model the spare maker learns from: the spare it finds then makes way
    wait_until(lambda: any(private_mib(p) > 2 for p in spares(agentty_home)), timeout=30)
    for _ in range(3):
        spare = one_spare(agentty_home)
        assert start("cat")["workerPid"] == spare
    log = (agentty_home / "logs" / "spawner.log").read_text()
    assert "could not take" not in log and "request failed" not in log, log


def test_a_killed_spare_and_the_spawner_forks_instead(agentty_home: Path) -> None:
    info = warm(agentty_home)
    spare = one_spare(agentty_home)
    os.kill(spare, signal.SIGKILL)
    wait_until(lambda: gone(spare), timeout=15)
    rec = start("cat")
    assert forked(rec) and rec["workerPid"] != spare
    assert spawner_info(agentty_home) == info


def test_a_stopped_spare_falls_back_and_leaves_nothing(agentty_home: Path) -> None:
    """The spare takes the request and stops: the caller sees no answer, gives up within
    its bounded wait and starts the session directly; continued, the spare finds its
    caller gone and exits."""
    warm(agentty_home)
    spare = one_spare(agentty_home)
    os.kill(spare, signal.SIGSTOP)
    try:
        rec = start("cat")
        assert rec["status"] == "running" and rec["workerPid"] != spare
    finally:
        os.kill(spare, signal.SIGCONT)
    wait_until(lambda: gone(spare), timeout=15)
    wait_until(lambda: only_sessions_and_spawner(agentty_home), timeout=30)
    assert len([s for s in agentty_json("status")["sessions"] if s["status"] == "running"]) == 2


@pytest.mark.parametrize("end", ["stopped", "killed"])
def test_a_stopped_spare_never_outlives_its_spawner(agentty_home: Path, end: str) -> None:
    """Stopped, a spare cannot read its end of file: the spawner that lets it go kills it;
    a spawner killed outright cannot, and the home's next spawner does."""
    info = warm(agentty_home)
    spare = one_spare(agentty_home)
    os.kill(spare, signal.SIGSTOP)
    try:
        if end == "stopped":
            assert spawner_client.stop(str(agentty_home))
        else:
            os.kill(info["pid"], signal.SIGKILL)
            wait_until(lambda: gone(info["pid"]), timeout=15)
            assert not gone(spare)  # nobody's now
            assert not forked(start("cat"))  # and this start launches the next spawner
            ready_spawner(agentty_home)
        wait_until(lambda: gone(spare), timeout=15)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(spare, signal.SIGCONT)


def test_a_spare_stopped_while_the_spawner_takes_it_never_outlives_it(
    agentty_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The spare waits before its spawner holds its end (the maker hands it over after);
    told to stop then, the spawner finishes taking it and ends it. (Seen in CI: the stop
    arrived mid-way, the end was dropped with the exception, and the stopped spare, which
    cannot read its end of file, stayed.)"""
    monkeypatch.setenv("AGENTTY_FAILPOINTS", "spawner.spare_received=sleep:1")
    warm(agentty_home)
    spare = one_spare(agentty_home)  # (the spawner is still in the failpoint's sleep)
    os.kill(spare, signal.SIGSTOP)
    try:
        assert spawner_client.stop(str(agentty_home))
        wait_until(lambda: gone(spare), timeout=15)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(spare, signal.SIGCONT)


def test_a_spare_stopped_before_it_said_it_waits_never_outlives_its_spawner(
    agentty_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stopped between taking its name and saying it waits, a spare's pid is unknown to the
    spawner: letting it go, the spawner finds it stopped and ends it."""
    monkeypatch.setenv("AGENTTY_FAILPOINTS", "spare.settled=sigstop")
    warm(agentty_home)
    stopped = one_spare(agentty_home, settled=False)
    try:
        wait_until(lambda: psutil.Process(stopped).status() == psutil.STATUS_STOPPED)
        assert forked(start("cat"))  # forked for: the spare is kept, not said ready
        assert spawner_client.stop(str(agentty_home))
        wait_until(lambda: gone(stopped), timeout=15)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(stopped, signal.SIGCONT)


def test_a_stopped_spare_given_a_request_is_ended_by_the_caller_that_gave_up(
    agentty_home: Path,
) -> None:
    """The spare took the request and stopped: the caller starts the session directly and
    ends the spare it gave up on (it could not read that nobody waits for it any more)."""
    warm(agentty_home)
    spare = one_spare(agentty_home)
    os.kill(spare, signal.SIGSTOP)
    try:
        rec = start("cat")
        assert rec["workerPid"] != spare
        wait_until(lambda: gone(spare), timeout=15)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(spare, signal.SIGCONT)
    wait_until(lambda: only_sessions_and_spawner(agentty_home), timeout=30)


def test_a_held_state_lock_ends_a_warm_start_in_the_lock_s_words(agentty_home: Path) -> None:
    """Another process holds the state lock past its timeout: the worker forked for the
    start gives up on its intent record and says so (the direct path's message), nothing
    of the session is left (record, log, process), and `start` exits as the direct path
    does, instead of after its own ready wait with a message about the worker."""
    from tests.helpers.cli import agentty
    from tests.reliability.conftest import state_lock

    warm(agentty_home)
    spare = one_spare(agentty_home)
    before = agentty_json("status")["sessions"]
    with state_lock(agentty_home):
        proc = agentty("start", "--", "cat")
    lock = agentty_home / "sessions.json.lock"
    assert proc.returncode == 1, proc
    said = f"agentty: error: timed out after 10s waiting for {lock}, held by pid {os.getpid()} ("
    assert proc.stderr.startswith(said) and proc.stderr.count("\n") == 1, proc.stderr
    assert gone(spare)  # it was the start's worker, and ended
    assert [r["id"] for r in agentty_json("status")["sessions"]] == [r["id"] for r in before]
    logs = {p.name.split(".")[0] for p in (agentty_home / "logs").iterdir()}
    assert logs <= {"spawner", *(r["id"] for r in before)}
    wait_until(lambda: only_sessions_and_spawner(agentty_home), timeout=30)


def test_a_lock_held_after_the_intent_ends_a_warm_start_in_the_lock_s_words(
    agentty_home: Path,
) -> None:
    """The lock is taken between the worker's intent record and its running record: the
    worker's wait for it (10 s) ends before the lane's wait for the worker, so `start` says
    what happened (the lock), not that the worker was not ready, and it does not then wait
    on the same lock again to mark the start failed."""
    import subprocess
    import threading

    from tests.helpers.cli import AGENTTY
    from tests.reliability.conftest import state_lock, with_failpoints

    warm(agentty_home)
    one_spare(agentty_home)
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        with state_lock(agentty_home):
            locked.set()
            release.wait(60)

    proc = subprocess.Popen(
        [AGENTTY, "start", "--", "cat"],
        env=with_failpoints("worker.after_intent=sleep:1"),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    holder = threading.Thread(target=hold)
    try:
        wait_until(lambda: len(agentty_json("status")["sessions"]) == 2, timeout=10)  # intent
        holder.start()
        assert locked.wait(10)
        _, err = proc.communicate(timeout=60)
    finally:
        release.set()
        if holder.is_alive():
            holder.join()
    assert proc.returncode == 1
    assert "not ready" not in err
    assert f"timed out after 10s waiting for {agentty_home / 'sessions.json.lock'}" in err
    assert len(err.splitlines()) == 1, err


def test_a_directory_where_the_socket_goes_launches_no_spawner(agentty_home: Path) -> None:
    """It could not bind there: starts go the direct way and launch no spawner that would
    import everything only to fail (each start did, its traceback in spawner.log)."""
    start("true", env=dict(os.environ, AGENTTY_SPAWNER="0"))  # the home and its directories
    (agentty_home / "sockets" / "spawner.sock").mkdir()
    for _ in range(2):
        assert not forked(start("cat"))
    assert spawner_info(agentty_home) is None
    assert not (agentty_home / "logs" / "spawner.log").exists()


# ----------------------------------------------------------------- the spare maker


def the_maker(home: Path) -> int:
    wait_until(lambda: len(makers(home)) == 1, timeout=30)
    (pid,) = makers(home)
    return pid


def test_spares_come_from_the_maker(agentty_home: Path) -> None:
    """The spare is forked by the maker, not by the spawner that serves the requests: its
    pages stay shared with a process that writes nearly none of them meanwhile."""
    info = warm(agentty_home)
    maker = the_maker(agentty_home)
    assert psutil.Process(maker).ppid() == info["pid"]
    spare = one_spare(agentty_home)
    rec = start("cat")
    assert rec["workerPid"] == spare and forked(rec)
    assert psutil.Process(spare).name() == psutil.Process(info["pid"]).name()  # a worker's
    assert one_spare(agentty_home) != spare
    assert makers(agentty_home) == {maker}
    log = (agentty_home / "logs" / "spawner.log").read_text()
    assert "maker" not in log, log


@pytest.mark.parametrize("helper", [one_spare, the_maker], ids=["spare", "maker"])
@pytest.mark.parametrize("end", ["stopped", "killed"])
def test_the_spawners_helpers_end_with_it(
    agentty_home: Path, helper: Callable[[Path], int], end: str
) -> None:
    """Its spare (at its socket pair's end of file) and its maker (at its own, or by
    PR_SET_PDEATHSIG when the spawner is killed) never outlive the spawner."""
    info = warm(agentty_home)
    pid = helper(agentty_home)
    if end == "stopped":
        assert spawner_client.stop(str(agentty_home))
    else:
        os.kill(info["pid"], signal.SIGKILL)
    wait_until(lambda: gone(pid), timeout=15)


@pytest.mark.parametrize("fault", [signal.SIGKILL, signal.SIGSTOP], ids=["killed", "stopped"])
def test_without_its_maker_the_spawner_forks_spares_itself(
    agentty_home: Path, fault: signal.Signals
) -> None:
    info = warm(agentty_home)
    maker = the_maker(agentty_home)
    spare = one_spare(agentty_home)
    os.kill(maker, fault)
    try:
        for i in range(3):  # the spare made before, then spares the spawner forks
            rec = start("cat")
            assert forked(rec)
            if i == 0 and rec["workerPid"] != spare:
                # Seen before the maker handed it over, and the maker stopped in between
                # (CI, under load): the start was forked for, the spare ends with the maker.
                wait_until(lambda s=spare: gone(s), timeout=15)  # type: ignore[misc]
            else:
                assert rec["workerPid"] == spare
            spare = one_spare(agentty_home)
            assert blocked_mask(spare) & STOP_BITS == 0  # (forked while the spawner holds)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(maker, signal.SIGCONT)
    wait_until(lambda: gone(maker), timeout=15)  # ended (a stopped one too) and reaped
    assert spawner_info(agentty_home) == info
    assert "forking spares here" in (agentty_home / "logs" / "spawner.log").read_text()


def test_a_maker_that_cannot_fork_is_kept_and_starts_are_forked(
    agentty_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its fork fails (EAGAIN): it says so, the spawner makes no spare for a while and
    forks each worker on request, and asks the same maker again later."""
    monkeypatch.setenv("AGENTTY_FAILPOINTS", "spawner.fork_spare=raise:EAGAIN")
    info = warm(agentty_home)  # the spawner (and so its maker) has the failpoint
    maker = the_maker(agentty_home)
    log = agentty_home / "logs" / "spawner.log"
    wait_until(lambda: "cannot fork a spare" in log.read_text(), timeout=30)
    monkeypatch.delenv("AGENTTY_FAILPOINTS")
    assert forked(start("cat"))
    assert not spares(agentty_home)
    assert makers(agentty_home) == {maker} and spawner_info(agentty_home) == info
    assert "forking spares here" not in log.read_text()


def test_dropping_a_spare_that_died_signals_nobody(agentty_home: Path) -> None:
    """A spare that died on its own (its end of the pair closed) may have lent its pid to
    another process by the time it is let go: that process must not be killed."""
    import subprocess

    from agentty_core.paths import Home
    from agentty_core.worker.spawner import Spawner

    stand_in = subprocess.Popen(["sleep", "100"])  # the process that now has the spare's pid
    ours, theirs = socket.socketpair()
    theirs.close()  # the spare is gone
    ours.setblocking(False)
    spawner = Spawner(Home(agentty_home), 60.0)
    spawner.spare, spawner.spare_pid = ours, stand_in.pid
    try:
        spawner._drop_spare()
        with pytest.raises(subprocess.TimeoutExpired):
            stand_in.wait(timeout=0.5)  # not killed
    finally:
        stand_in.kill()
        stand_in.wait()


def test_a_stopped_spare_that_cannot_take_a_large_request_is_killed(agentty_home: Path) -> None:
    """Its buffer full (a request of megabytes: a large environment), the hand-over times out
    and the spare is let go: stopped, it must be killed, not left owned by nobody."""
    from agentty_core.paths import Home
    from agentty_core.worker import spare
    from agentty_core.worker.spawner import Spawner

    ours, theirs = socket.socketpair()
    pid = os.fork()
    if pid == 0:  # the spare: it stops before reading anything
        ours.close()
        os.kill(os.getpid(), signal.SIGSTOP)
        os._exit(0)
    theirs.close()
    wait_until(lambda: psutil.Process(pid).status() == psutil.STATUS_STOPPED, timeout=10)
    spawner = Spawner(Home(agentty_home), 60.0)
    spawner.spare, spawner.spare_pid = ours, pid
    caller, caller_end = socket.socketpair()
    try:
        assert not spare.hand_over(ours, b"x" * (3 << 20), caller, [])  # it cannot take it
        spawner._drop_spare()
        reaped: list[int] = []  # its wait status, once it ended

        def ended() -> bool:
            found, status = os.waitpid(pid, os.WNOHANG)
            reaped.extend([status] if found == pid else [])
            return bool(reaped)

        wait_until(ended)
        assert os.WIFSIGNALED(reaped[0]) and os.WTERMSIG(reaped[0]) == signal.SIGKILL
    finally:
        caller.close()
        caller_end.close()
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)


def test_a_spawner_that_cannot_describe_itself_exits_cleanly(
    agentty_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk full when the spawner writes `spawner.json` (here: once it is ready to
    listen): it died of the OSError and left its temp file for good. It exits without a
    trace now; the next start with room launches another."""
    import json

    from tests.reliability.test_worker_io_faults import _fill, tmpfs

    with tmpfs(agentty_home, agentty_home, "1m"):
        monkeypatch.setenv("AGENTTY_FAILPOINTS", "spawner.listen=sleep:3")
        start("true")
        described = agentty_home / "spawner.json"
        wait_until(described.exists, timeout=30)
        pid = json.loads(described.read_text())["pid"]
        filler = _fill(agentty_home)
        wait_until(lambda: gone(pid), timeout=30)
        assert [p.name for p in agentty_home.iterdir() if p.name.startswith(".spawner")] == []
        filler.unlink()
        monkeypatch.delenv("AGENTTY_FAILPOINTS")
        start("true")
        ready_spawner(agentty_home)
