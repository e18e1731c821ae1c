"""Client's connections to workers: kept open for the next call, repeated only when safe.

A connect costs more than the request, so one connection a session is kept (taken out
while in use: threads never share one). A worker that does not answer is told apart from a
lost socket (R5, R8); requests that act are never sent twice. The list with the workers'
live fields (`sessions(live_info=True)`) asks them all at once.
"""

from __future__ import annotations

import time
import weakref

from agentty_core.client_records import DEFAULT_TIMEOUT, RecordsView, describe_end
from agentty_core.errors import (
    AgenttyError,
    ProtocolError,
    RemoteError,
    SessionNotFound,
    SessionNotRunning,
    WorkerUnreachable,
    no_answer,
)
from agentty_core.ipc import client as ipc_client
from agentty_core.ipc import forks
from agentty_core.paths import Home
from agentty_core.protocol import ACTING, JSONObject
from agentty_core.spawning import stopped
from agentty_core.state import records
from agentty_core.state.records import Record, is_live

TYPE_CHECKING = False  # without importing typing
if TYPE_CHECKING:
    from collections.abc import Callable

INFO_TIMEOUT = 1.0  # seconds for every running worker's live fields together
INFO_GRACE = 0.2  # what an ask begun after that still gets (a loaded machine: not 1 ms)
_SAFE_TO_REPEAT = frozenset({"get", "info", "ping", "wait"})  # requests that change nothing
# A worker with every connection taken (waits pending) refuses a new one with "busy" before
# it reads the request, so any request is safe to send again: asked again for this long.
BUSY_PATIENCE = 3.0
UNREAD = frozenset({"busy", "evicted"})  # the worker closed the connection unread
# A worker serves 64 connections; an async caller's waits on one session beyond this many
# queue for a slot (their timeout still counts from the call), leaving room for get, input
# and the CLI (the MCP server's, `AsyncSession`'s).
WAIT_SLOTS = 32


def turned_away(exc: BaseException) -> bool:
    """The worker closed the connection before it read the request: it said "busy" or
    "evicted", or our send failed on the closed connection. Nothing of it was done, so it
    may be sent again as it is (not an input sent in parts some of which it took)."""
    if isinstance(exc, AgenttyError) and exc.input_sent:
        return False
    if isinstance(exc, RemoteError):
        return exc.code in UNREAD
    return isinstance(exc, WorkerUnreachable) and exc.reason == "send_failed"


def kept_call_failed(exc: BaseException) -> str:
    """What a call's failure on a kept connection (`Session._fast`, `AsyncSession._fast`)
    means: "again", turned away unread (the connection closed, the call asked again after a
    pause); "answered", an error answer (the connection still in step, given back; the
    error raised); "lost", the worker gone or out of step (closed; the call goes the long
    way, which says why); "raise", anything else, an interruption above all (closed: its
    answer may still come, on no one's call)."""
    if isinstance(exc, (RemoteError, WorkerUnreachable)) and turned_away(exc):
        return "again"
    if isinstance(exc, RemoteError):
        return "answered"
    if isinstance(exc, (WorkerUnreachable, ProtocolError)):
        return "lost"
    return "raise"


def may_have_acted(method: str, exc: BaseException) -> bool:
    """Whether an acting request (`protocol.ACTING`: typing, a signal) whose answer did not
    come in time may have been done: read by the worker, which then stopped before it
    answered. Asked again the long way, it was done twice once the worker ran again within
    the new request's wait."""
    return (
        method in ACTING
        and isinstance(exc, WorkerUnreachable)
        and exc.reason == "timeout"
        and not ipc_client.not_done(exc)
    )


class Patience:
    """How long a request turned away is asked again (`turned_away`): pauses from 10 ms,
    doubling to 0.2 s, for `seconds` in all. One for every caller, blocking or async."""

    def __init__(self, seconds: float = BUSY_PATIENCE) -> None:
        self.until = time.monotonic() + seconds
        self.pause = 0.01

    def next(self) -> float | None:
        """The pause before asking again, or None once that would go past the patience
        (looked at once the ask failed: a send may take its whole timeout to fail)."""
        pause = self.pause
        if time.monotonic() + pause > self.until:
            return None
        self.pause = min(pause * 2, 0.2)
        return pause


def _close_all(connections: dict[str, ipc_client.Connection]) -> None:
    while connections:
        connections.popitem()[1].close()


def _closed(client: Connected) -> None:
    client.close()


class Connected(RecordsView):
    """The records, and the workers behind them."""

    def __init__(self, home: Home | None = None, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.home = home or Home.for_reading()  # (made by the first `start`)
        self.timeout = timeout
        # Open connections to workers, kept for the next call to the same session: a
        # connect costs more than the request. Taken out while in use, so threads never
        # share one.
        self._idle: dict[str, ipc_client.Connection] = {}
        self._idle_records: dict[str, Record] = {}  # the record each kept connection was made for
        weakref.finalize(self, _close_all, self._idle)
        forks.reset_in_child(self, _closed)  # (in a forked child: its copies of the parent's)

    def close(self) -> None:
        """Close the connections kept open for reuse (also done when the client is freed)."""
        _close_all(self._idle)
        self._idle_records.clear()

    def let_go(self, session_id: str) -> None:
        """Close the connection kept open to one session (`Session.close`: a script that
        starts, kills and closes sessions in a loop kept one a session, to a worker gone)."""
        self._idle_records.pop(session_id, None)
        conn = self._idle.pop(session_id, None)
        if conn is not None:
            conn.close()

    def sessions(self, *, live_info: bool = False) -> list[Record]:
        """Every record, with dead workers noticed and marked `lost`."""
        result = []
        for rec in self._records():
            if rec.get("status") in ("running", "lost") and not self.worker_alive(rec):
                if rec.get("status") == "running" or self._final_exit(rec["id"]) is not None:
                    rec = self._mark_lost(rec, "worker died")
            elif rec.get("status") == "running" and (ended := self._final_exit(rec["id"])):
                # The program ended and its worker is still trying to record it (a lock held
                # elsewhere, a full disk): the final screen it saved first says how.
                code, sig, when = ended
                rec = {**rec, "status": "exited", "exitCode": code, "signal": sig, "endedAt": when}
            elif (
                rec.get("status") == "starting"
                and rec.get("workerPid") is not None
                and not self.worker_alive(rec)
            ):
                rec = self._mark_lost(rec, "worker died during startup")
            result.append(rec)
        if live_info:
            self._merge_live_info(result)
        return result

    def _merge_live_info(self, recs: list[Record]) -> None:
        """Ask every running worker for its live fields at once, within one INFO_TIMEOUT
        for all: stopped workers cost that once, not once per thread's turn. An ended
        session's input state is said as `get --json` says it."""
        from agentty_core.proc import inputstate

        for i, rec in enumerate(recs):
            if rec.get("status") not in ("starting", "running"):
                recs[i] = records.checked({**rec, "input": inputstate.exited()}) or rec
        running = [i for i, r in enumerate(recs) if r.get("status") == "running"]
        if not running:
            return
        from concurrent.futures import ThreadPoolExecutor

        deadline = time.monotonic() + INFO_TIMEOUT

        def ask(i: int) -> tuple[int, object]:
            wait = max(deadline - time.monotonic(), INFO_GRACE)
            try:
                return i, self._call(recs[i], "info", timeout=wait, patience=0).get("record")
            except AgenttyError:
                return i, None

        with ThreadPoolExecutor(max_workers=min(16, len(running))) as pool:
            for i, info in pool.map(ask, running):
                if isinstance(info, dict):
                    live = {k: info.get(k) for k in records.LIVE_FIELDS}
                    if "recordingError" in info or "recordingError" in recs[i]:
                        live["recordingError"] = info.get("recordingError")  # (see records)
                    if info.get("status") == "exited":  # not recorded yet (a full disk)
                        live.update({k: info.get(k) for k in records.ENDED_FIELDS})
                    recs[i] = records.checked({**recs[i], **live}) or recs[i]

    def _vouched(self, ref: str | None) -> Record | None:
        """The record of the session `ref` names by its id, when a kept connection to its
        worker is still open: that worker's pid was checked when the connection was made,
        so the session is live without reading the state file again (which was half of a
        `text` + `wait` round trip). The worker itself refuses input once its program ended."""
        if ref is None:
            return None
        conn = self._idle.get(ref)
        if conn is None or not conn.reusable():
            return None
        return self._idle_records.get(ref)

    def _call_running(self, ref: str | None, method: str, params: JSONObject) -> JSONObject:
        """Input for a running session. Through a kept connection the worker may answer that
        its program just ended: then the state file tells it as for any ended session."""
        rec = self._vouched(ref)
        if rec is not None:
            try:
                return self._call(rec, method, params)
            except RemoteError as exc:
                if exc.code != "exited":
                    raise
        return self._call(self.require_running(ref), method, params)

    def _call(
        self,
        rec: Record,
        method: str,
        params: JSONObject | None = None,
        timeout: float | None = None,
        *,
        patience: float = BUSY_PATIENCE,
        running: Callable[[], bool] | None = None,
    ) -> JSONObject:
        """One request to the session's worker, asked again for up to `patience` seconds
        while the worker turns it away unread: "busy" or "evicted", or, when it closed the
        connection before our request went out, a send that failed (nothing of it was
        read). A caller with a time of its own for the answer (`info` for every worker
        within a second, `kill`'s ping) gives 0. `running`: see `Connection.call`."""
        waiting = Patience(patience)
        while True:
            try:
                return self._call_once(rec, method, params, timeout, running)
            except (RemoteError, WorkerUnreachable) as exc:
                if not turned_away(exc) or (pause := waiting.next()) is None:
                    raise
            time.sleep(pause)

    def _call_once(
        self,
        rec: Record,
        method: str,
        params: JSONObject | None,
        timeout: float | None,
        running: Callable[[], bool] | None = None,
    ) -> JSONObject:
        session_id = rec["id"]
        expect = rec.get("workerPid")
        wait = self.timeout if timeout is None else timeout
        conn = self._idle.pop(session_id, None)
        if conn is not None and (conn.peer_pid != expect or not conn.reusable()):
            conn.close()
            conn = None
        reused = conn is not None
        try:
            if conn is None:
                path = str(self.home.socket_path(session_id))
                conn = ipc_client.Connection(path, timeout=wait, expect_pid=expect)
        except WorkerUnreachable as exc:
            return self._recover_call(rec, method, params, wait, exc)
        try:
            result = conn.call(method, params, timeout=wait, running=running)
        except WorkerUnreachable as exc:
            conn.close()
            if reused and method in _SAFE_TO_REPEAT:
                # A kept connection the worker closed just now (idle, say): ask once more on
                # a new one. Requests that act are not repeated: they may have been done.
                return self._call_once(rec, method, params, timeout)
            return self._recover_call(rec, method, params, wait, exc)
        except RemoteError as exc:
            if exc.code in UNREAD:
                conn.close()  # refused: the worker closes it
            else:
                self._keep(rec, conn)  # an error answer leaves the connection in step
            raise
        except BaseException:
            conn.close()
            raise
        self._keep(rec, conn)
        return result

    def _keep(self, rec: Record, conn: ipc_client.Connection) -> None:
        session_id = rec["id"]
        old = self._idle.pop(session_id, None)
        self._idle_records[session_id] = rec
        self._idle[session_id] = conn
        if old is not None:
            old.close()

    def _recover_call(
        self,
        rec: Record,
        method: str,
        params: JSONObject | None,
        timeout: float,
        exc: WorkerUnreachable,
    ) -> JSONObject:
        """The socket did not answer: tell a dead worker from a lost socket (R5, R8)."""
        session_id = rec["id"]
        try:
            fresh = records.find(records.records(self.home), session_id)
        except SessionNotFound:  # missing from the list (brought back by this reader, unsaved)
            fresh = rec
        if not is_live(fresh):
            raise SessionNotRunning(session_id, describe_end(fresh)) from None
        if not self.worker_alive(fresh):
            raise SessionNotRunning(
                session_id, describe_end(self._mark_lost(fresh, "worker died"))
            ) from None
        pid = fresh.get("workerPid")
        assert isinstance(pid, int)  # worker_alive() found that process
        if exc.reason == "socket_missing":
            path = str(self.home.socket_path(session_id))
            if ipc_client.rebind(pid, path, within=2.0):
                return ipc_client.call(path, method, params, timeout=timeout, expect_pid=pid)
            raise WorkerUnreachable(
                f"socket of session {session_id} is missing; worker alive (pid {pid})",
                "socket_missing",
            ) from None
        if exc.reason == "timeout" and stopped(pid):  # said, with what resumes or ends it
            said = WorkerUnreachable(no_answer(pid), "timeout")
            said.unread = exc.unread
            raise said from None
        raise exc
