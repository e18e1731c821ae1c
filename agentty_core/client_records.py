"""Client's reading of the state file: listing is lenient, acting is loud.

A session's record, checked against the living (a running record whose worker is gone is
marked `lost` on the spot, or `exited` when its final screen was saved), resolved by id,
prefix or name, and the final screen of an ended session. Workers are talked to here only
to bring back a running session missing from the list (`recovery`); `client_calls` does
the rest. Standard library only until something must be written.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path

from agentty_core.errors import (
    AgenttyError,
    NoActiveSession,
    SessionNotFound,
    SessionNotRunning,
)
from agentty_core.ipc import client as ipc_client
from agentty_core.lazylog import LazyLogger
from agentty_core.paths import Home
from agentty_core.proc import identity
from agentty_core.protocol import JSONObject, str_list
from agentty_core.state import records
from agentty_core.state.records import Record, is_live

TYPE_CHECKING = False  # without importing typing: this module is on the hot path
if TYPE_CHECKING:
    from agentty_core.state.store import StateStore

log = LazyLogger("agentty_core.client")  # one logger for the whole Client

DEFAULT_TIMEOUT = 5.0
BEST_EFFORT_LOCK = 2.0  # how long a reader waits to write down what it noticed
START_INCOMPLETE = "the start did not complete: its worker ended during startup"
RECORD_PIDS = (("workerPid", "workerStart"), ("pid", "pidStart"))  # what a record names


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
        screen = records.strict_json(raw) if raw is not None else None
    except (AgenttyError, ValueError, RecursionError):
        return None
    return screen if isinstance(screen, dict) else None


class RecordsView:
    """The records of one agentty home, as `Client` sees them (its lowest part)."""

    home: Home
    timeout: float

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
        may have died before it could record the exit), else it is lost; or, a `starting`
        record with nothing of it left running, its start failed (a start that could not
        write that down: a full disk, a lock held).

        Written down if possible; a reader never fails because that write does (a full
        disk, a lock held elsewhere): the next reader notices the same thing again."""
        session_id = record["id"]
        ended = self._final_exit(session_id)
        changes: JSONObject
        if ended is None:
            changes = {"status": "lost", "error": reason}
            if record.get("status") == "starting" and not self._survivors(session_id):
                from agentty_core.state.store import now_iso

                changes = {"status": "failed", "error": START_INCOMPLETE, "endedAt": now_iso()}
            settled: Record = {**record, **changes}  # type: ignore[typeddict-item]
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

    def _survivors(self, session_id: str) -> bool:
        """Whether processes marked as the session's still run (its program may have forked
        before its worker died): it is then `lost`, for `orphans`, `gc` and `kill`."""
        from agentty_core.proc.orphans import marked_processes

        return bool(marked_processes(self.home, {session_id}))

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
        """The records; a corrupt file is moved aside and rebuilt from live workers first,
        and a running session missing from the list is brought back (`_brought_back`)."""
        try:
            found = records.records(self.home)
        except records.CorruptState:
            pass
        else:
            return found + self._brought_back(found)
        try:
            self._store().mutate(lambda sessions: None)  # the writer recovers it (R3)
        except AgenttyError as exc:  # cannot be saved: what the live workers say, unsaved
            from agentty_core.recovery import rebuild_from_workers

            log.info("cannot rebuild %s: %s", self.home.state_file, exc)
            return rebuild_from_workers(self.home)
        return records.records(self.home)

    def _brought_back(self, found: list[Record]) -> list[Record]:
        """Running sessions whose workers answer on their sockets but whom the list does not
        name (a restored backup, a hand edit): their records, written back to the list (a
        reader that cannot write them, a held lock say, still shows them). One whose worker
        does not answer (stopped) is shown from its processes, not written: a record without
        its name would give the name away. A session whose record is there but malformed is
        left to `doctor` and `gc`."""
        from agentty_core.ipc.unlisted import unrecorded_sockets
        from agentty_core.recovery import running_unrecorded

        known = {rec["id"] for rec in found}
        if not unrecorded_sockets(self.home, known):  # (the usual case: one listdir)
            return []
        try:
            stored = records.load_state(self.home)["sessions"]
        except AgenttyError:
            return []  # (changed meanwhile: the next reader looks again)
        if isinstance(stored, list):  # malformed records too: their sessions are not missing
            known |= {str(raw.get("id")) for raw in stored if isinstance(raw, dict)}
        missing, silent = running_unrecorded(self.home, known)
        if not missing:
            return silent  # shown, to be seen and ended; written once their workers answer
        added: list[str] = []

        def restore(sessions: list[Record]) -> None:
            present = {rec.get("id") for rec in sessions}
            for rec in missing:
                if rec["id"] not in present:
                    sessions.append(rec)
                    added.append(rec["id"])

        try:
            self._store(BEST_EFFORT_LOCK).mutate(restore)
        except AgenttyError as exc:
            log.info("cannot write back the sessions missing from the list: %s", exc)
            added.clear()  # not listed again: said by the next reader that can write it
        if added:
            path = self.home.state_file
            log.warning(
                "%s did not list running session(s) %s: listed again", path, " ".join(added)
            )
        return missing + silent

    def resolve(self, ref: str | None) -> Record:
        try:
            return records.resolve(self.home, ref)
        except records.CorruptState:
            self._records()
            return records.resolve(self.home, ref)
        except (SessionNotFound, NoActiveSession):
            found = records.records(self.home)
            missing = self._brought_back(found)
            if not missing:
                raise
            return records.pick(self.home, found + missing, ref)

    def require_running(self, ref: str | None) -> Record:
        rec = self.resolve(ref)
        if rec.get("status") == "running" and not self.worker_alive(rec):
            rec = self._mark_lost(rec, "worker died")
        if not is_live(rec):
            raise SessionNotRunning(rec["id"], describe_end(rec))
        return rec

    def _settled(self, session_id: str) -> Record:
        """The record of a session found not running, with a dead worker noticed even when
        that could not be written down (a full disk)."""
        rec = self.resolve(session_id)
        if is_live(rec) and not self.worker_alive(rec):
            rec = self._mark_lost(rec, "worker died")
        return rec

    def final_screen(self, rec: Record, **params: object) -> JSONObject:
        """What an ended session showed last (R10); an error if nothing was saved."""
        return self.final_screen_and_masks(rec, **params)[0]

    def final_screen_and_masks(self, rec: Record, **params: object) -> tuple[JSONObject, object]:
        """`final_screen`, and what its worker kept with it for waits after an input
        (`final_wait.masked_lines` reads it)."""
        screen = _read_final(self.home.final_path(rec["id"]))
        if screen is None:
            raise SessionNotRunning(rec["id"], f"{describe_end(rec)}; no final screen saved")
        masks = screen.pop("masks", None)
        lines = params.get("lines")
        if isinstance(lines, int):
            from agentty_core.screen_text import trim_lines

            text = trim_lines(str_list(screen.get("scrollback")) + str_list(screen.get("lines")))
            screen["lines"] = text[-lines:] if lines else []
        if params.get("scrollback") is not True or isinstance(lines, int):
            screen.pop("scrollback", None)  # (with lines, its part is in them)
        if params.get("ansi") is not True:
            screen.pop("ansi", None)  # saved for get --ansi/--png; a live get sends it if asked
        if rec.get("status") == "exited" or "exitCode" not in screen:
            # The record wins, but a lost one knows less than the file its worker saved.
            screen.update(exitCode=rec.get("exitCode"), signal=rec.get("signal"))
        screen["exited"] = True
        return screen, masks
