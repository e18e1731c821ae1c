"""Client's end of sessions: kill and confirm, orphans, and the files left behind.

`kill` asks the worker to run the kill ladder (killtree.py) and runs it from here when the
worker cannot answer; orphans are found by their marker and re-proven before a signal; `gc`
removes ended sessions' records, sockets, logs, final screens and recordings.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from agentty_core.client_calls import Connected
from agentty_core.client_records import RECORD_PIDS, describe_end
from agentty_core.errors import (
    AgenttyError,
    AmbiguousSession,
    RemoteError,
    SessionNotFound,
    SessionNotRunning,
    UsageError,
    WorkerUnreachable,
)
from agentty_core.ipc import client as ipc_client
from agentty_core.protocol import MAX_GRACE, JSONObject, finite
from agentty_core.spawning import stopped
from agentty_core.state import records
from agentty_core.state.records import Record, is_live

TYPE_CHECKING = False  # without importing typing: this module is on the hot path
SWEEP_MIN_AGE = 10.0  # seconds: a younger socket no record names may be a worker's, binding
if TYPE_CHECKING:
    from agentty_core.proc.orphans import Orphan


class Ending(Connected):
    """kill, orphans, end_orphans, gc, gc_session, logs and recordings."""

    def kill(
        self, ref: str | None = None, *, grace: float = 2.0, silent: str | None = None
    ) -> JSONObject:
        """End the session's whole process tree and confirm it; see killtree.py. `silent`:
        the id of a session whose worker just failed to answer a ping (the CLI's lane
        asked): not asked again."""
        if not finite(grace) or not 0 <= grace <= MAX_GRACE:  # (the worker's own limit)
            raise UsageError(f"kill: grace must be a number of seconds in 0..{MAX_GRACE:g}")
        rec = self.resolve(ref)
        session_id = rec["id"]
        if rec.get("status") in ("exited", "failed"):
            raise SessionNotRunning(session_id, f"already {describe_end(rec)}")
        if is_live(rec) and self.worker_alive(rec):
            if silent == session_id:
                return self._kill_without_worker(rec, grace, "worker did not answer in time")
            if stopped(rec.get("workerPid")):  # it would not answer the ping: not waited for
                return self._kill_without_worker(rec, grace, "worker was stopped")
            try:
                # A worker that cannot answer this (stopped, pinned) is not waited on for the
                # whole kill: its processes are ended from here instead. A live but slow one
                # (a loaded machine) still ends its session itself: the ladder's SIGHUP ends
                # the program and the worker records that exit.
                self._call(rec, "ping", patience=0)  # busy: ended from here, at once
                worker = rec.get("workerPid")  # stopped during its kill: ended from here too
                result = self._call(
                    rec,
                    "kill",
                    {"grace": grace},
                    timeout=grace * 3 + 10,
                    running=lambda: not stopped(worker),
                )
            except RemoteError as exc:
                if exc.code == "busy":
                    return self._kill_without_worker(rec, grace, exc.message)
                if exc.code == "exited":  # before the kill, unrecorded yet (or just now)
                    raise SessionNotRunning.already(session_id, exc.message) from None
                raise
            except (WorkerUnreachable, SessionNotRunning) as exc:
                return self._kill_without_worker(rec, grace, exc.message)
            return {"id": session_id, **result, **self._ended_fields(session_id, result)}
        return self._kill_orphaned(rec, grace)

    def _kill_without_worker(self, rec: Record, grace: float, reason: str) -> JSONObject:
        """`kill` when the worker does not answer, or died during the kill: the same ladder,
        run from here over the worker and the program by the pid and start time the record
        keeps (a recycled pid is never signalled) and every process carrying the session's
        marker (survivors of a dead worker). A stopped worker gets SIGCONT with SIGHUP (which
        it ignores) and runs again: one that can act ends its session and records the exit
        itself; one that cannot is killed, and the record then says the session is lost,
        with why."""
        from agentty_core.errors import KillNotConfirmed
        from agentty_core.proc.orphans import end_session

        session_id = rec["id"]
        known = [(rec.get(pid), rec.get(start)) for pid, start in RECORD_PIDS]
        result, ended = end_session(self.home, session_id, known, grace)
        if result.survivors:
            raise KillNotConfirmed(session_id, result.survivors)
        try:
            fresh = records.find(records.records(self.home), session_id)
        except SessionNotFound:  # missing from the list, and its worker could not restore it
            fresh = {**rec, "status": "lost"}
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

    def _ended_fields(self, session_id: str, answer: JSONObject | None = None) -> JSONObject:
        """How the session ended: the worker's `answer` to the kill when it knows (its
        record may be behind it: a full disk, a held lock), else the record's."""
        if answer is not None and (answer.get("exitCode"), answer.get("signal")) != (None, None):
            return {"status": "exited", **{k: answer.get(k) for k in ("exitCode", "signal")}}
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
        result = end(found, grace=grace, again=lambda: marked_processes(self.home, {session_id}))
        if result.survivors:
            raise KillNotConfirmed(session_id, result.survivors)
        return {
            "id": session_id,
            "status": "lost",
            "escalated": result.escalated,
            "orphansKilled": [o.pid for o in found],
        }

    def kill_quietly(self, session_id: str, *, silent: str | None = None) -> None:
        with contextlib.suppress(AgenttyError):
            self.kill(session_id, grace=0.5, silent=silent)

    def orphans(self) -> list[Orphan]:
        """Processes of this home's sessions whose worker is gone (found by their marker)."""
        from agentty_core.proc.orphans import live_worker, marked_processes

        live = {r["id"] for r in self.sessions() if is_live(r)}
        unlisted = [o for o in marked_processes(self.home) if o.session_id not in live]
        return [o for o in unlisted if live_worker(o, self.home) is None]

    def end_orphans(self, orphans: list[Orphan] | None = None, grace: float = 1.0) -> JSONObject:
        """End orphans (re-proven by marker, pid and start time); raises if any survive."""
        from agentty_core.errors import KillNotConfirmed
        from agentty_core.proc.orphans import end

        targets = self.orphans() if orphans is None else orphans
        ids = {o.session_id for o in targets}  # and what they fork meanwhile
        result = end(
            targets, grace, again=lambda: [o for o in self.orphans() if o.session_id in ids]
        )
        if result.survivors:
            raise KillNotConfirmed("orphans", result.survivors)
        return {"killed": [o.pid for o in targets], "escalated": result.escalated}

    def gc(self, older_than: float | None = None) -> list[str]:
        """Remove the records, sockets, logs, final screens and recordings of ended sessions.

        Running sessions are never touched; `older_than` (seconds since the session ended)
        keeps recent ones; a lost session whose processes still run (orphans) is kept, so
        its record keeps pointing at them until `orphans --kill`; so is one that a live `run`
        holds (removed under it, `run` lost its program's code and screen; it removes the
        session itself once it has read the end). Returns the removed ids."""
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
            if _holder_alive(rec):
                continue  # its `run` removes it as soon as it has read the end
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
        self._sweep_unrecorded_sockets({rec["id"] for rec in all_sessions})
        # Records too malformed to list (hand-edited): readers skip them, gc removes them
        # (the file is rewritten only if it holds any).
        stored = records.load_state(self.home)["sessions"]
        if isinstance(stored, list) and records.skipped(stored):
            return sorted(doomed) + self._store().remove_bad(spare=self.worker_alive)
        return sorted(doomed)

    def gc_one(self, ref: str) -> str:
        """Remove one ended session's record and files (`gc --session`); its id. Refused as
        `gc` would keep it: running, lost with its processes still running, or held by a
        live `run` (which removes it itself)."""
        sid = self.resolve(ref)["id"]
        rec = next((r for r in self.sessions() if r["id"] == sid), None)
        if rec is None:  # (removed meanwhile)
            raise SessionNotFound(ref)
        if is_live(rec):
            raise AgenttyError(f"session {sid} is running: end it first (agentty kill -s {sid})")
        if rec.get("status") == "lost" and any(o.session_id == sid for o in self.orphans()):
            raise AgenttyError(
                f"session {sid} is lost and its processes still run: "
                "end them first (agentty orphans --kill)"
            )
        if _holder_alive(rec):
            raise AgenttyError(f"session {sid} is held by a run, which removes it at its end")
        self._remove_files({sid})
        return str(sid)

    def _remove_files(self, doomed: set[str]) -> None:
        self._store().forget(doomed)
        for session_id in doomed:
            ipc_client.remove_stale_socket(self.home.socket_path(session_id))

    def _sweep_unrecorded_sockets(self, listed: set[str]) -> None:
        """Sockets no record names and nobody answers on (a worker that died after its
        record was lost): `doctor` calls them stale. A running session's were brought back
        to the list by `sessions` (its worker answers), and are kept in any case; so is a
        new one (a worker between its bind and its listen is not answering yet: one that
        started after `listed` was read, or another home's in a shared socket directory)."""
        import time

        from agentty_core.ipc.unlisted import unrecorded_sockets

        for session_id in unrecorded_sockets(self.home, listed):
            path = self.home.socket_path(session_id)
            with contextlib.suppress(OSError):
                if time.time() - os.lstat(path).st_mtime >= SWEEP_MIN_AGE:
                    ipc_client.remove_stale_socket(path)

    def gc_session(self, session_id: str) -> None:
        """Remove one ended session's record and files (`run` cleans up after itself)."""
        self._remove_files({session_id})

    def cast_path(self, ref: str) -> Path:
        """A session's recording (by id, unique prefix or name) or a path to a .cast file: a
        session wins over a file so named here; a ref with a `/` is a path, never a session."""
        if "/" in ref:
            if os.path.isfile(ref):
                return Path(ref)
            raise SessionNotFound(ref)  # (the caller says there is no such file)
        try:
            rec = self.resolve(ref)
        except (SessionNotFound, AmbiguousSession):
            if os.path.isfile(ref):  # no session is that one: a file of this directory
                return Path(ref)
            raise
        path = self.home.cast_path(rec["id"])
        if not path.exists():
            raise UsageError(f"session {rec['id']} has no recording (start it with --record)")
        return path

    def logs(self, ref: str | None = None) -> Path:
        rec = self.resolve(ref)
        return self.home.log_path(rec["id"])


def _holder_alive(record: Record) -> bool:
    """Whether the process that holds the session (`run`, which removes it at its end)
    still runs: the same pid and start time."""
    pid = record.get("holderPid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    from agentty_core.proc import identity

    token = record.get("holderStart")
    return identity.same_process(pid, token if isinstance(token, str) else None)
