"""The one API the CLI and the dashboard use to talk to sessions.

Listing is lenient (a dead worker shows as `lost`, never raises); acting is loud (a missing,
exited or dead session is a specific error). Liveness is checked, never trusted from the
file: a running record whose worker is gone is marked `lost` on the spot, and its surviving
processes are reported as orphans.

The hot path (`get`, `text`, `key`, `wait`) imports only the standard library: it reads the
record, connects to the derived socket, and asks. psutil and filelock are imported only
when something must be written or a dead worker must be diagnosed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import time
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path

from agentty_core import keys
from agentty_core.errors import (
    AgenttyError,
    RemoteError,
    SessionNotRunning,
    UsageError,
    WaitTimeout,
    WorkerUnreachable,
)
from agentty_core.input_steps import (
    INPUT_PART,
    INPUT_PART_TIMEOUT,
    MAX_INPUT,
    input_bytes,
    part_ends,
    send_steps,
    text_params,
)
from agentty_core.ipc import client as ipc_client
from agentty_core.paths import Home
from agentty_core.proc import identity
from agentty_core.protocol import JSONObject, str_list
from agentty_core.state import records
from agentty_core.state.records import Record, is_live

TYPE_CHECKING = False  # without importing typing: this module is on the hot path
if TYPE_CHECKING:
    from agentty_core.ipc.subscription import Subscription
    from agentty_core.proc.orphans import Orphan
    from agentty_core.state.store import StateStore

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 5.0
BEST_EFFORT_LOCK = 2.0  # how long a reader waits to write down what it noticed
_SAFE_TO_REPEAT = frozenset({"get", "info", "ping", "wait"})  # requests that change nothing


def describe_end(record: Record) -> str:
    """'exited (code 3)', 'exited (signal SIGKILL)', 'worker died', ... for messages."""
    status = record.get("status")
    if status == "exited":
        if record.get("signal"):
            return f"exited (signal {record['signal']})"
        return f"exited (code {record.get('exitCode')})"
    if status == "failed":
        return f"failed to start: {record.get('error', 'unknown error')}"
    if status == "lost":
        return "is lost: its worker died"
    return str(status)


def _read_final(path: Path) -> JSONObject | None:
    """A final screen file (see `worker.core`), or None if there is none or it is unreadable."""
    try:
        raw = records.read_private_file(path)
        screen = json.loads(raw) if raw is not None else None
    except (AgenttyError, ValueError):
        return None
    return screen if isinstance(screen, dict) else None


def _close_all(connections: dict[str, ipc_client.Connection]) -> None:
    while connections:
        connections.popitem()[1].close()


RECORD_PIDS = (("workerPid", "workerStart"), ("pid", "pidStart"))  # what a record names


class Client:
    """Sessions of one agentty home."""

    def __init__(self, home: Home | None = None, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.home = home or Home.resolve()
        self.timeout = timeout
        # Open connections to workers, kept for the next call to the same session: a
        # connect costs more than the request. Taken out while in use, so threads never
        # share one.
        self._idle: dict[str, ipc_client.Connection] = {}
        self._idle_records: dict[str, Record] = {}  # the record each kept connection was made for
        weakref.finalize(self, _close_all, self._idle)

    def close(self) -> None:
        """Close the connections kept open for reuse (also done when the client is freed)."""
        _close_all(self._idle)
        self._idle_records.clear()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ listing and state

    def _store(self, timeout: float | None = None) -> StateStore:
        from agentty_core.recovery import rebuild_from_workers
        from agentty_core.state.store import (
            LOCK_TIMEOUT,
            StateStore,  # imported late: filelock stays off the hot path
        )

        timeout = LOCK_TIMEOUT if timeout is None else timeout
        return StateStore(self.home, timeout, ask_workers=rebuild_from_workers)

    def worker_alive(self, record: Mapping[str, object]) -> bool:
        pid, token = record.get("workerPid"), record.get("workerStart")
        if not isinstance(pid, int):
            return False
        return identity.same_process(pid, token if isinstance(token, str) else None)

    def _mark_lost(self, record: Record, reason: str) -> Record:
        """The worker is gone: the session exited if its final screen was saved (the worker
        may have died before it could record the exit), else it is lost.

        Written down if possible; a reader never fails because that write does (a full
        disk, a lock held elsewhere): the next reader notices the same thing again."""
        session_id = record["id"]
        ended = self._final_exit(session_id)
        changes: JSONObject
        if ended is None:
            settled: Record = {**record, "status": "lost", "error": reason}
            changes = {"status": "lost", "error": reason}
        else:
            code, sig, when = ended
            settled = {**record, "status": "exited", "exitCode": code, "signal": sig}
            settled["endedAt"] = when
            changes = {"status": "exited", "exitCode": code, "signal": sig, "endedAt": when}
        try:
            settled = self._store(BEST_EFFORT_LOCK).update(session_id, **changes) or settled
        except AgenttyError as exc:
            log.info("cannot record that session %s ended: %s", session_id, exc)
        with contextlib.suppress(OSError):
            ipc_client.remove_stale_socket(self.home.socket_path(session_id))  # worker is dead
        return settled

    def _final_exit(self, session_id: str) -> tuple[int, str | None, str] | None:
        """(exit code, signal, when) from the final screen the worker saved as its program
        ended, or None: the worker may have died (or met a full disk or a held lock) after
        saving it and before it recorded the exit."""
        path = self.home.final_path(session_id)
        screen = _read_final(path)
        code = screen.get("exitCode") if screen is not None else None
        if not isinstance(code, int) or isinstance(code, bool) or screen is None:
            return None
        sig = screen.get("signal")
        import datetime as dt

        try:
            mtime = os.stat(path).st_mtime
        except OSError:
            return None
        when = dt.datetime.fromtimestamp(mtime, dt.timezone.utc).isoformat(timespec="milliseconds")
        return code, sig if isinstance(sig, str) else None, when

    def _records(self) -> list[Record]:
        """The records; a corrupt file is moved aside and rebuilt from live workers first."""
        try:
            return records.records(self.home)
        except records.CorruptState:
            pass
        try:
            self._store().mutate(lambda sessions: None)  # the writer recovers it (R3)
        except AgenttyError as exc:  # cannot be saved: what the live workers say, unsaved
            from agentty_core.recovery import rebuild_from_workers

            log.info("cannot rebuild %s: %s", self.home.state_file, exc)
            return rebuild_from_workers(self.home)
        return records.records(self.home)

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
        """Ask every running worker for its live fields at once, so one slow worker costs
        its own timeout, not everybody's."""
        running = [i for i, r in enumerate(recs) if r.get("status") == "running"]
        if not running:
            return
        from concurrent.futures import ThreadPoolExecutor

        def ask(i: int) -> tuple[int, object]:
            try:
                return i, self._call(recs[i], "info", timeout=1.0).get("record")
            except AgenttyError:
                return i, None

        with ThreadPoolExecutor(max_workers=min(16, len(running))) as pool:
            for i, info in pool.map(ask, running):
                if isinstance(info, dict):
                    live = {k: info.get(k) for k in ("lastActiveAt", "input", "seq")}
                    recs[i] = records.checked({**recs[i], **live}) or recs[i]

    def status(self) -> JSONObject:
        from agentty_core._version import __version__

        sessions = self.sessions(live_info=True)
        status: JSONObject = {
            "version": __version__,
            "home": str(self.home.root),
            "active": records.read_active(self.home),
            "sessions": list(sessions),
        }
        # Survivors of dead workers are looked for only when a worker did die: the sweep
        # reads every process's environment, which `status` should not pay for otherwise.
        if any(r.get("status") == "lost" for r in sessions):
            status["orphans"] = [o.as_json() for o in self.orphans()]
        return status

    def resolve(self, ref: str | None) -> Record:
        try:
            return records.resolve(self.home, ref)
        except records.CorruptState:
            self._records()
            return records.resolve(self.home, ref)

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

    def require_running(self, ref: str | None) -> Record:
        rec = self.resolve(ref)
        if rec.get("status") == "running" and not self.worker_alive(rec):
            rec = self._mark_lost(rec, "worker died")
        if not is_live(rec):
            raise SessionNotRunning(rec["id"], describe_end(rec))
        return rec

    # ------------------------------------------------------------ talking to a worker

    def _call(
        self,
        rec: Record,
        method: str,
        params: JSONObject | None = None,
        timeout: float | None = None,
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
            result = conn.call(method, params, timeout=wait)
        except WorkerUnreachable as exc:
            conn.close()
            if reused and method in _SAFE_TO_REPEAT:
                # A kept connection the worker closed just now (idle, say): ask once more on
                # a new one. Requests that act are not repeated: they may have been done.
                return self._call(rec, method, params, timeout)
            return self._recover_call(rec, method, params, wait, exc)
        except RemoteError:
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
        fresh = records.find(records.records(self.home), session_id)
        if not is_live(fresh):
            raise SessionNotRunning(session_id, describe_end(fresh)) from None
        if not self.worker_alive(fresh):
            raise SessionNotRunning(
                session_id, describe_end(self._mark_lost(fresh, "worker died"))
            ) from None
        pid = fresh.get("workerPid")
        assert isinstance(pid, int)  # worker_alive() found that process
        if exc.reason == "socket_missing":
            os.kill(pid, signal.SIGUSR1)  # the worker re-creates its socket
            path = str(self.home.socket_path(session_id))
            deadline = time.monotonic() + 2.0
            while time.monotonic() < deadline:
                if os.path.exists(path):
                    return ipc_client.call(path, method, params, timeout=timeout, expect_pid=pid)
                time.sleep(0.01)
            raise WorkerUnreachable(
                f"socket of session {session_id} is missing; worker alive (pid {pid})",
                "socket_missing",
            ) from None
        raise exc

    # ------------------------------------------------------------ actions

    def start(
        self,
        argv: Sequence[str] | None = None,
        *,
        shell: str | None = None,
        name: str | None = None,
        cwd: str | None = None,
        cols: int = 80,
        rows: int = 24,
        env: Mapping[str, str] | None = None,
        activate: bool = True,
        record: Mapping[str, bool] | None = None,
    ) -> Record:
        """Start a session; it becomes the active one unless `activate=False`."""
        from agentty_core.launch.launcher import start

        return start(
            self.home,
            argv,
            shell=shell,
            name=name,
            cwd=cwd,
            cols=cols,
            rows=rows,
            env=env,
            activate=activate,
            record_cast=record,
            store=self._store(),
        )

    def attach(self, ref: str) -> Record:
        rec = self.require_running(ref)
        self._store().set_active(rec["id"])
        return rec

    def get(self, ref: str | None = None, **params: object) -> JSONObject:
        rec = self._vouched(ref) or self.resolve(ref)
        if is_live(rec):
            with contextlib.suppress(SessionNotRunning):
                return self._call(rec, "get", params)
            rec = self._settled(rec["id"])
        return self.final_screen(rec, **params)

    def _settled(self, session_id: str) -> Record:
        """The record of a session found not running, with a dead worker noticed even when
        that could not be written down (a full disk)."""
        rec = self.resolve(session_id)
        if is_live(rec) and not self.worker_alive(rec):
            rec = self._mark_lost(rec, "worker died")
        return rec

    def final_screen(self, rec: Record, **params: object) -> JSONObject:
        """What an ended session showed last (R10); an error if nothing was saved."""
        screen = _read_final(self.home.final_path(rec["id"]))
        if screen is None:
            raise SessionNotRunning(rec["id"], f"{describe_end(rec)}; no final screen saved")
        lines = params.get("lines")
        if isinstance(lines, int):
            from agentty_core.screen_text import trim_lines

            text = trim_lines(str_list(screen.get("scrollback")) + str_list(screen.get("lines")))
            screen["lines"] = text[-lines:] if lines else []
        if params.get("scrollback") is not True:
            screen.pop("scrollback", None)
        if params.get("ansi") is not True:
            screen.pop("ansi", None)  # saved for get --ansi/--png; a live get sends it if asked
        if rec.get("status") == "exited" or "exitCode" not in screen:
            # The record wins, but a lost one knows less than the file its worker saved.
            screen.update(exitCode=rec.get("exitCode"), signal=rec.get("signal"))
        screen["exited"] = True
        return screen

    def text(
        self, ref: str | None, data: str | bytes, *, enter: bool = False, paste: bool = False
    ) -> JSONObject:
        # A str is sent as JSON text, up to 6 bytes a character (\uXXXX escapes).
        if len(data) <= (INPUT_PART if isinstance(data, bytes) else INPUT_PART // 6):
            return self._call_running(ref, "text", text_params(data, enter=enter, paste=paste))
        return self._text_in_parts(ref, input_bytes(data), enter=enter, paste=paste)

    def _text_in_parts(
        self, ref: str | None, data: bytes, *, enter: bool, paste: bool
    ) -> JSONObject:
        """Input larger than one request: parts in order, each answered once the program has
        read enough for it to fit the worker's queue (issue 16 #17). A paste is bracketed
        once around the whole; the Enter follows the last part."""
        total = len(data)
        if total > MAX_INPUT:
            raise UsageError(
                f"input of {total} bytes is over the limit of {MAX_INPUT} bytes (64 MiB); "
                "nothing was sent"
            )
        rec = self.require_running(ref)
        multiline = b"\n" in data or b"\r" in data
        first: JSONObject = {}
        sent = written = 0
        for end in part_ends(data, INPUT_PART):
            params = text_params(
                data[sent:end], enter=enter and end == total, paste=paste or multiline
            )
            params["part"] = "first" if sent == 0 else "last" if end == total else "more"
            if first:
                params["bracketed"] = first.get("bracketed") is True
            try:
                answer = self._call(rec, "text", params, timeout=INPUT_PART_TIMEOUT)
            except RemoteError as exc:
                raise RemoteError(
                    f"{exc.message}; {sent} of {total} bytes were sent",
                    code=exc.code,
                    exit_code=exc.exit_code,
                ) from None
            first = first or answer
            count = answer.get("bytes")
            written += count if isinstance(count, int) else 0
            sent = end
        return {"seq": first.get("seq"), "bytes": written}

    def paste(self, ref: str | None, data: str | bytes) -> JSONObject:
        return self.text(ref, data, paste=True)

    def key(self, ref: str | None, names: Sequence[str]) -> JSONObject:
        keys.parse_all(list(names))  # validate before anything is sent
        return self._call_running(ref, "key", {"keys": list(names)})

    def send(
        self, ref: str | None, args: Sequence[str], *, literal: bool = False, enter: bool = False
    ) -> JSONObject:
        """Mixed input (see `send_steps`): every key checked first, then the requests in
        order. The result carries the seq from before the first."""
        steps = send_steps(args, literal=literal, enter=enter)
        first = self._call_running(ref, *steps[0])
        for method, params in steps[1:]:
            self._call_running(ref, method, params)
        return {"seq": first.get("seq")}

    def resize(self, ref: str | None, cols: int, rows: int) -> JSONObject:
        rec = self.require_running(ref)
        return self._call(rec, "resize", {"cols": cols, "rows": rows})

    def signal(self, ref: str | None, name: str, *, leader: bool = False) -> JSONObject:
        rec = self.require_running(ref)
        return self._call(rec, "signal", {"name": name, "leader": leader})

    def wait(self, ref: str | None, *, timeout: float = 30.0, **conditions: object) -> JSONObject:
        """Block until a condition holds (answered by the worker); WaitTimeout after `timeout`."""
        rec = self._vouched(ref) or self.resolve(ref)
        from agentty_core.waitspec import wire_params  # dataclasses: not for every command

        params = wire_params(conditions, timeout)  # 0 is a value (a fresh session's seq)
        if not is_live(rec):
            return self._wait_ended(rec, params)
        try:
            return self._call(rec, "wait", params, timeout=timeout + 5.0)
        except RemoteError as exc:
            if exc.code == "timeout":
                raise WaitTimeout(exc.message, self.get(rec["id"])) from None
            if exc.code == "exited":
                return self._wait_ended(self._settled(rec["id"]), params)
            raise
        except SessionNotRunning:
            return self._wait_ended(self._settled(rec["id"]), params)

    def _wait_ended(self, rec: Record, params: JSONObject) -> JSONObject:
        """A wait on an ended session: `exit` (or text on its last screen) fires at once."""
        screen = self.final_screen(rec, scrollback=params.get("scrollback") is True)
        lines = str_list(screen.get("scrollback")) + str_list(screen.get("lines"))
        after, seq = params.get("after"), screen.get("seq")
        newer = not isinstance(after, int) or (isinstance(seq, int) and seq > after)
        for cond in ("text", "gone") if newer else ():  # `after`: only a newer screen counts
            needle = params.get(cond)
            if isinstance(needle, str):
                present = any(needle in line for line in lines)
                if present == (cond == "text"):
                    return {**screen, "fired": cond, "elapsed_ms": 0}
        if params.get("exit"):
            return {**screen, "fired": "exit", "elapsed_ms": 0}
        raise SessionNotRunning(rec["id"], describe_end(rec))

    def kill(self, ref: str | None = None, *, grace: float = 2.0) -> JSONObject:
        """End the session's whole process tree and confirm it; see killtree.py."""
        rec = self.resolve(ref)
        session_id = rec["id"]
        if rec.get("status") in ("exited", "failed"):
            raise SessionNotRunning(session_id, f"already {describe_end(rec)}")
        if is_live(rec) and self.worker_alive(rec):
            try:
                # A worker that cannot answer this (stopped, pinned) is not waited on for the
                # whole kill: its processes are ended from here instead. A live but slow one
                # (a loaded machine) still ends its session itself: the ladder's SIGHUP ends
                # the program and the worker records that exit.
                self._call(rec, "ping")
                result = self._call(rec, "kill", {"grace": grace}, timeout=grace * 3 + 10)
            except RemoteError as exc:
                if exc.code == "busy":
                    return self._kill_without_worker(rec, grace, exc.message)
                if exc.code != "exited":
                    raise
                result = {}
            except (WorkerUnreachable, SessionNotRunning) as exc:
                return self._kill_without_worker(rec, grace, exc.message)
            return {"id": session_id, **result, **self._ended_fields(session_id)}
        return self._kill_orphaned(rec, grace)

    def _kill_without_worker(self, rec: Record, grace: float, reason: str) -> JSONObject:
        """`kill` when the worker does not answer, or died during the kill: the same ladder,
        run from here over the worker and the program by the pid and start time the record
        keeps (a recycled pid is never signalled) and every process carrying the session's
        marker (survivors of a dead worker). A stopped worker gets SIGCONT with SIGTERM, and
        one that can act on it ends its session and records the exit itself; one that cannot
        is killed, and the record then says the session is lost, with why."""
        from agentty_core.errors import KillNotConfirmed
        from agentty_core.proc.orphans import end_session

        session_id = rec["id"]
        known = [(rec.get(pid), rec.get(start)) for pid, start in RECORD_PIDS]
        result, ended = end_session(self.home, session_id, known, grace)
        if result.survivors:
            raise KillNotConfirmed(session_id, result.survivors)
        fresh = records.find(records.records(self.home), session_id)
        if is_live(fresh):
            # Nobody recorded the end: say so. A write that fails changes nothing here (the
            # worker is gone, so the next reader marks the session lost anyway).
            with contextlib.suppress(AgenttyError, OSError):
                fresh = self._mark_lost(fresh, f"killed while its worker did not answer: {reason}")
        worker = rec.get("workerPid")
        return {
            "id": session_id,
            **{k: fresh.get(k) for k in ("status", "exitCode", "signal")},
            "escalated": result.escalated,
            "orphansKilled": sorted(pid for pid in ended if pid != worker),
        }

    def _ended_fields(self, session_id: str) -> JSONObject:
        rec = records.find(records.records(self.home), session_id)
        return {k: rec.get(k) for k in ("status", "exitCode", "signal")}

    def _kill_orphaned(self, rec: Record, grace: float) -> JSONObject:
        """The worker is gone: end what survives of the session by its environment marker."""
        from agentty_core.errors import KillNotConfirmed
        from agentty_core.proc.orphans import end, marked_processes

        session_id = rec["id"]
        if rec.get("status") != "lost":
            self._mark_lost(rec, "worker died")
        found = marked_processes(self.home, {session_id})
        result = end(found, grace=grace)
        if result.survivors:
            raise KillNotConfirmed(session_id, result.survivors)
        return {
            "id": session_id,
            "status": "lost",
            "escalated": result.escalated,
            "orphansKilled": [o.pid for o in found],
        }

    def subscribe(self, ref: str | None) -> Subscription:
        """Screen events pushed by the worker until the session ends or the subscription is
        closed (from any thread). Blocking to iterate: run it off the UI thread."""
        from agentty_core.ipc.subscription import Subscription

        rec = self.require_running(ref)
        return Subscription(
            str(self.home.socket_path(rec["id"])), rec.get("workerPid"), self.timeout
        )

    def orphans(self) -> list[Orphan]:
        """Processes of this home's sessions whose worker is gone (found by their marker)."""
        from agentty_core.proc.orphans import marked_processes

        live = {r["id"] for r in self.sessions() if is_live(r)}
        return [o for o in marked_processes(self.home) if o.session_id not in live]

    def end_orphans(self, orphans: list[Orphan] | None = None, grace: float = 1.0) -> JSONObject:
        """End orphans (re-proven by marker, pid and start time); raises if any survive."""
        from agentty_core.errors import KillNotConfirmed
        from agentty_core.proc.orphans import end

        targets = self.orphans() if orphans is None else orphans
        result = end(targets, grace=grace)
        if result.survivors:
            raise KillNotConfirmed("orphans", result.survivors)
        return {"killed": [o.pid for o in targets], "escalated": result.escalated}

    def gc(self, older_than: float | None = None) -> list[str]:
        """Remove the records, sockets, logs, final screens and recordings of ended sessions.

        Running sessions are never touched; `older_than` (seconds since the session ended)
        keeps recent ones; a lost session whose processes still run (orphans) is kept, so
        its record keeps pointing at them until `orphans --kill`. Returns the removed ids."""
        import datetime as dt

        now = dt.datetime.now(dt.timezone.utc)
        doomed: set[str] = set()
        all_sessions = self.sessions()
        orphaned = (
            {o.session_id for o in self.orphans()}
            if any(r.get("status") == "lost" for r in all_sessions)
            else set()
        )
        for rec in all_sessions:
            if is_live(rec) or rec["id"] in orphaned:
                continue
            if older_than is not None:
                ended = rec.get("endedAt") or rec.get("lastActiveAt") or rec.get("startedAt")
                try:
                    moment = dt.datetime.fromisoformat(ended or "")
                except ValueError:
                    moment = None  # unreadable: as old as can be
                if moment is not None and moment.tzinfo is None:
                    moment = moment.replace(tzinfo=dt.timezone.utc)  # hand-written, naive
                if moment is not None and (now - moment).total_seconds() < older_than:
                    continue
            doomed.add(rec["id"])
        self._remove_files(doomed)
        # Records too malformed to list (hand-edited): readers skip them, gc removes them
        # (the file is rewritten only if it holds any).
        stored = records.load_state(self.home)["sessions"]
        if isinstance(stored, list) and any(map(records.bad_record, stored)):
            return sorted(doomed) + self._store().remove_bad(spare=self.worker_alive)
        return sorted(doomed)

    def _remove_files(self, doomed: set[str]) -> None:
        if not doomed:
            return
        self._store().remove(doomed)
        for session_id in doomed:
            for path in (
                self.home.log_path(session_id),
                self.home.final_path(session_id),
                self.home.cast_path(session_id),
            ):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            ipc_client.remove_stale_socket(self.home.socket_path(session_id))
        if records.read_active(self.home) in doomed:
            self._store().set_active(None)

    def gc_session(self, session_id: str) -> None:
        """Remove one ended session's record and files (`run` cleans up after itself)."""
        self._remove_files({session_id})

    def kill_quietly(self, session_id: str) -> None:
        with contextlib.suppress(AgenttyError):
            self.kill(session_id, grace=0.5)

    def record(
        self, ref: str | None, on: bool, *, input: bool = False, markers: bool = False
    ) -> JSONObject:
        """Start or stop the asciicast recording of a running session."""
        rec = self.require_running(ref)
        return self._call(rec, "record", {"on": on, "input": input, "markers": markers})

    def cast_path(self, ref: str) -> Path:
        """A session's recording (by id, prefix or name) or a path to a .cast file."""
        if os.path.isfile(ref):
            return Path(ref)
        rec = self.resolve(ref)
        path = self.home.cast_path(rec["id"])
        if not path.exists():
            raise UsageError(f"session {rec['id']} has no recording (start it with --record)")
        return path

    def logs(self, ref: str | None = None) -> Path:
        rec = self.resolve(ref)
        return self.home.log_path(rec["id"])
