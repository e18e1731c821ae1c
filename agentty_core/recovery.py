"""Rebuilding the session list from the workers themselves.

Used when `sessions.json` is corrupt, or readable but missing a running session (a restored
backup, a hand edit): every live worker knows its own record and answers `info`, so the
list is never reset while sessions run, nor a running session lost from it. The asking is
done by callers only, outside the state lock (see `StateStore._mutate`). It sits beside
`client`, above `state` and `ipc`, because it needs both: the workers' sockets and the
records' checks.
"""

from __future__ import annotations

from agentty_core.errors import AgenttyError
from agentty_core.ipc import client as ipc_client
from agentty_core.ipc.unlisted import unrecorded_sockets
from agentty_core.lazylog import LazyLogger
from agentty_core.paths import SESSION_ID_RE, Home
from agentty_core.state.records import PROBED_FIELDS, Record, checked

log = LazyLogger(__name__)


def rebuild_from_workers(home: Home, timeout: float = 1.0) -> list[Record]:
    """The records the workers behind `home`'s sockets answer with. Called by `StateStore`
    in a caller (never a worker), and never while the state lock is held."""
    found: list[Record] = []
    sock_dir = home.socket_dir()
    try:
        names = sorted(p.name for p in sock_dir.iterdir())
    except OSError:
        return found
    asked: set[str] = set()
    for name in names:
        session_id = name.removesuffix(".sock")
        if not name.endswith(".sock") or not SESSION_ID_RE.match(session_id):
            continue
        asked.add(session_id)
        record = _ask(home, session_id, timeout)
        if record is not None:
            found.append(record)
    known = {r["id"] for r in found}
    return found + _unanswered(home, known, asked - known, timeout)


def _ask(home: Home, session_id: str, timeout: float, pid: int | None = None) -> Record | None:
    try:
        info = ipc_client.call(
            str(home.socket_path(session_id)), "info", timeout=timeout, expect_pid=pid
        )
    except AgenttyError as exc:
        log.info("no live worker behind the socket of %s: %s", session_id, exc)
        return None
    record = checked(info.get("record"))
    if record is None or record["id"] != session_id:
        return None
    # Ours, not another home's (homes may share one AGENTTY_SOCKET_DIR): its log is here.
    return record if record.get("log") == str(home.log_path(session_id)) else None


def _unanswered(home: Home, known: set[str], silent: set[str], timeout: float) -> list[Record]:
    """Live workers the socket walk did not bring back (`silent`: asked, no answer), found
    above their sessions' processes by the socket they still listen on: one whose socket
    file was removed is told to bind it again (SIGUSR1, as a call to one does), then asked;
    one that does not answer (stopped, say) is listed with what is known of it, so that its
    session can still be seen and ended (`kill` ends a silent worker from outside). Left
    out, such a session could be reached by nobody, and its programs looked orphaned."""
    from agentty_core.proc import identity
    from agentty_core.proc.orphans import live_worker, marked_processes

    found: list[Record] = []
    for orphan in marked_processes(home):
        sid = orphan.session_id
        if sid in known or not SESSION_ID_RE.fullmatch(sid):
            continue
        worker = live_worker(orphan, home)
        if worker is None:
            continue
        known.add(sid)
        path = home.socket_path(sid)
        if not path.exists():
            ipc_client.rebind(worker.pid, str(path), within=timeout)
        record = None if sid in silent and path.exists() else _ask(home, sid, timeout, worker.pid)
        if record is None:
            record = checked(
                {
                    "id": sid,
                    "status": "running",
                    "command": orphan.command,
                    "error": "listed again without its worker's answer (it did not answer)",
                    **identity.worker_fields(worker.pid),
                }
            )
        if record is not None:
            found.append(record)
    return found


def running_unrecorded(
    home: Home, known: set[str], timeout: float = 0.5
) -> tuple[list[Record], list[Record]]:
    """Running sessions missing from a readable list (a restored backup, a hand edit): a
    worker that answers on its socket gives its record. Only a running one: a worker whose
    session ended may have been told to forget it (`run`), and is about to go. Second, the
    sessions of workers that listen and do not answer (stopped), with what their processes
    tell: enough to see and end them, too little to write down (their names, say)."""
    found = []
    silent = set()
    for session_id in unrecorded_sockets(home, known):
        record = _ask(home, session_id, timeout)
        if record is None:
            if ipc_client.listened_on(home.socket_path(session_id)) is not False:
                silent.add(session_id)  # (a dead worker's socket is nobody's: `gc` sweeps it)
        elif record.get("status") == "running":
            kept = checked({k: v for k, v in record.items() if k not in PROBED_FIELDS})
            if kept is not None:
                found.append(kept)
    if not silent:
        return found, []
    listed = _unanswered(home, set(known), silent, timeout)  # by their processes' marker
    return found, [rec for rec in listed if rec["id"] in silent]
