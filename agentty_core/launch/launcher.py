"""Starting a session: validate, write the intent record, launch the worker, wait for ready.

The protocol (dtach/abduco's): the worker is started detached (`start_new_session`), its
stdio on the log file and /dev/null, never on the caller's pipes, with the write end of a
status pipe. It writes one JSON line once the program runs and the socket answers, or an
error; EOF without a line means it died. `start` returns only after that line, and on any
failure leaves no running record and no process behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from functools import partial

from agentty_core import failpoints
from agentty_core.errors import EXIT_USAGE, AgenttyError, SpawnError
from agentty_core.ipc.client import remove_stale_socket
from agentty_core.ipc.unlisted import running_names
from agentty_core.launch import spawn as worker_spawn
from agentty_core.launch import spawner_client
from agentty_core.launch.spawn import SpawnedWorker, WorkerTimeout
from agentty_core.paths import Home
from agentty_core.proc import identity
from agentty_core.proc.command import resolve_command, validate_cwd
from agentty_core.state import intent
from agentty_core.state.records import RawRecord, Record, checked, read_active
from agentty_core.state.store import LOCK_TIMEOUT, StateStore, now_iso

# The worker's running record waits for the state lock up to its timeout: `start` waits as
# long and more, to say what the worker says (the lock's message), not that time ran out.
READY_TIMEOUT = LOCK_TIMEOUT + 10.0
DISCARD_LOCK_WAIT = 1.0  # a failed or interrupted start's record: the lock is not waited for


def _worker_alive(record: Record) -> bool:
    pid = record.get("workerPid")
    if not isinstance(pid, int):
        # An intent record whose worker has not said its pid yet: treat as live.
        return record.get("status") == "starting"
    token = record.get("workerStart")
    return identity.same_process(pid, token if isinstance(token, str) else None)


def start(
    home: Home,
    argv: Sequence[str] | None = None,
    *,
    shell: str | None = None,
    name: str | None = None,
    cwd: str | None = None,
    cols: int = 80,
    rows: int = 24,
    env: Mapping[str, str] | None = None,
    timeout: float = READY_TIMEOUT,
    activate: bool = True,
    record_cast: Mapping[str, bool] | None = None,
    store: StateStore | None = None,
    held: bool = False,
    on_ready: Callable[[], None] | None = None,
) -> Record:
    """Start a session and return its record once the program runs and the socket answers.
    `store` is the caller's (`Client` gives one that can rebuild a corrupt list). Until
    `on_ready` is called (once the program runs), an interruption (Ctrl-C) undoes the start:
    the worker is ended, and nothing of the session stays (`on_ready` is called before the
    undo too: nothing may interrupt it in turn)."""
    home.check()  # made now if this is its first session
    planned = intent.plan(
        home,
        argv,
        session_id=os.urandom(4).hex(),
        environ=os.environ,
        check_cwd=validate_cwd,
        resolve=resolve_command,
        shell=shell,
        name=name,
        cwd=cwd,
        cols=cols,
        rows=rows,
        env=env,
        activate=activate,
        record_cast=record_cast,
        held=held,
        holder=identity.holder_fields(os.getpid()) if held else None,
    )
    session_id, log_path = planned.session_id, planned.log_path
    store = store or StateStore(home)
    previous = read_active(home) if activate else None  # for an interrupted start's undo

    # The worker spends ~0.1 s importing before it reads its spec: it is started first (the
    # `agentty` command starts it before anything else) and the intent record is written
    # meanwhile. It gets the spec only once the record exists.
    early = worker_spawn.take_early()
    proc, cannot_spawn = (early, None) if early is not None else _spawn_logging_to(log_path)
    if proc is not None:  # named in the intent record: the worker need not write it first
        intent.name_worker(planned, identity.worker_fields(proc.pid))
    try:
        intent.claim(store, planned, _worker_alive, partial(running_names, home))
    except BaseException as exc:
        from agentty_core.launch import spawner_client

        spawner_client.forget()  # refused: nothing of it runs on, not even a spawner
        if on_ready is not None and not isinstance(exc, Exception):
            on_ready()  # (a second signal must not cut the undo short)
        if proc is not None:
            _kill_worker(proc)  # it has no spec yet: nothing of the session ran
            os.close(proc.status_fd)
        with contextlib.suppress(OSError):
            os.unlink(log_path)
        if not isinstance(exc, Exception):  # interrupted, the record written or not
            discard(home, session_id, None)
        raise
    try:
        return _run_claimed(
            planned, proc, cannot_spawn, early is not None, timeout, on_ready, store, previous
        )
    except BaseException as exc:  # interrupted (Ctrl-C): the worker is ended, nothing stays
        if not isinstance(exc, Exception):
            if on_ready is not None:
                on_ready()  # (a second signal must not cut the undo short)
            if proc is not None:
                _kill_worker(proc)
                if proc.status_fd >= 0:  # (not handed its spec yet)
                    os.close(proc.status_fd)
                    proc.status_fd = -1
            discard(home, session_id, previous)
        raise


def _run_claimed(
    planned: intent.Intent,
    proc: SpawnedWorker | None,
    cannot_spawn: OSError | None,
    early: bool,
    timeout: float,
    on_ready: Callable[[], None] | None,
    store: StateStore,
    previous: str | None,
) -> Record:
    """`start` once its intent record is written: the worker runs the session, or the
    record says why not (and the active pointer names `previous` again, should the worker
    have set it before it failed). Its caller undoes it all if it is interrupted (Ctrl-C)."""
    home, session_id, log_path = store.home, planned.session_id, planned.log_path
    record, spec = planned.record, planned.spec
    failpoints.hit("launcher.after_claim")
    if proc is None:  # reported after the state write: a broken home is the first thing to say
        error = cannot_spawn.strerror if cannot_spawn is not None else "unknown error"
        message = f"cannot start the worker ({sys.executable}): {error}"
        with contextlib.suppress(Exception):
            store.update(session_id, status="failed", error=message, endedAt=now_iso())
        failed = SpawnError(message, log_path=str(log_path))
        failed.session_id = session_id
        raise failed
    # An early worker's output goes nowhere until it knows its session's log.
    spec["log_to"] = str(log_path) if early else None
    try:
        ready = _hand_over(proc, spec, timeout)
    except SpawnError as exc:
        exc.log_path, exc.session_id = str(log_path), session_id
        with contextlib.suppress(Exception):  # a held lock must not hold up the message
            StateStore(home, timeout=DISCARD_LOCK_WAIT).fail(
                session_id, exc.message, previous=previous
            )
        # A worker that died after binding leaves its socket; nothing answers on it now.
        with contextlib.suppress(OSError):
            remove_stale_socket(home.socket_path(session_id))
        raise
    if on_ready is not None:  # (the CLI: from here on, Ctrl-C lets the start finish)
        on_ready()
    failpoints.hit("start.ready")
    # Nothing after `ready` may fail: a `start` that fails leaves nothing running, one that
    # leaves a session running succeeds (the worker set the active pointer with its record).
    from agentty_core.state.records import records

    with contextlib.suppress(Exception):  # a failed read cannot undo a started session
        for rec in records(home):
            if rec.get("id") == session_id:
                return rec
    running = {"status": "running", "pid": ready.get("pid"), "workerPid": ready.get("workerPid")}
    return checked({**record, **running}) or record


def discard(home: Home, session_id: str, previous: str | None) -> None:
    """Undo a `start` interrupted while it waited for its worker, or whose id could not be
    printed (`startlane.unannounced`), its session ended by then: the session's record,
    files and socket go, and the active pointer, if the worker had set it, names
    `previous` again if that is still recorded (all under one lock). Within
    DISCARD_LOCK_WAIT: under a lock held longer, or on a full disk, the record stays, and
    says that its worker is gone; that is an error (`StartNotUndone`), for nobody else
    would tell."""
    with contextlib.suppress(OSError):
        remove_stale_socket(home.socket_path(session_id))
    try:
        StateStore(home, timeout=DISCARD_LOCK_WAIT).forget({session_id}, instead=previous)
    except (AgenttyError, OSError) as exc:
        if not _recorded(home, session_id):  # (interrupted before its intent was written)
            return
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise StartNotUndone(
            f"start interrupted; its session {session_id} could not be removed: {why}; "
            "agentty gc removes it"
        ) from None


def _recorded(home: Home, session_id: str) -> bool:
    """Whether the list names the session (read without the lock; True where unreadable)."""
    from agentty_core.state.records import records

    try:
        return any(rec["id"] == session_id for rec in records(home))
    except AgenttyError:
        return True


class StartNotUndone(AgenttyError):
    """An interrupted start whose session's record could not be removed."""


def _spawn_logging_to(log_path: str) -> tuple[SpawnedWorker | None, OSError | None]:
    """A worker with its output on the session's log, or why none could be started."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
    log_fd = os.open(log_path, flags, 0o600)
    try:
        return spawner_client.spawn_worker(log_fd), None
    except OSError as exc:
        return None, exc
    finally:
        os.close(log_fd)


def _hand_over(proc: SpawnedWorker, spec: dict[str, object], timeout: float) -> RawRecord:
    """Give the worker its spec and wait for its status line (the `ready` or an error)."""
    try:
        proc.hand_over(json.dumps(spec, ensure_ascii=True).encode())
        message = _read_status(proc.status_fd, timeout)
    except BaseException:
        _kill_worker(proc)
        raise
    finally:
        os.close(proc.status_fd)
        proc.status_fd = -1
    if message is None:
        _kill_worker(proc)
        raise SpawnError("worker died during startup")
    if message.get("ok") is not True:
        _kill_worker(proc)
        code = message.get("exit_code")
        raise SpawnError(
            str(message.get("error", "the program did not start")),
            exit_code=code if isinstance(code, int) and code != EXIT_USAGE else 1,
        )
    # The worker runs on, detached. A long-lived caller (the dashboard, a test) must still
    # reap it when it ends, or it would linger as a zombie: a daemon thread waits for it.
    threading.Thread(target=proc.wait, name=f"reap-worker-{proc.pid}", daemon=True).start()
    return message


def _read_status(fd: int, timeout: float) -> RawRecord | None:
    deadline = time.monotonic() + timeout
    buf = b""
    while b"\n" not in buf:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise SpawnError(f"the worker was not ready within {timeout:g}s")
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            return None
        buf += chunk
    try:
        message = json.loads(buf.split(b"\n", 1)[0])
    except ValueError:
        return None
    return message if isinstance(message, dict) else None


def _kill_worker(proc: SpawnedWorker) -> None:
    """A worker that failed to start takes its whole session down (it leads its group)."""
    proc.close_spec()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=3)
    except WorkerTimeout:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=3)
