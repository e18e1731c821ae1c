"""Finding the processes of sessions whose worker is gone, by the marker in their environment.

Every process of a session inherits `AGENTTY_SESSION_ID=<id>` and `AGENTTY_HOME=<home>`, so
after a worker dies (SIGKILL, OOM) its survivors (HUP-ignoring programs, `nohup` and
`setsid` daemons) can still be found and ended. Ownership is proven by the marker, the uid
and a live psutil handle (pid + start time) before any signal is sent. A process that
scrubbed its environment (`env -i setsid ...`) escapes this sweep: a documented limit.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import psutil

from agentty_core.paths import Home
from agentty_core.proc import identity
from agentty_core.proc.killtree import KillResult, ladder, run_sync


@dataclass(frozen=True)
class Orphan:
    pid: int
    session_id: str
    command: str
    age_seconds: float
    process: psutil.Process

    def as_json(self) -> dict[str, object]:
        return {
            "pid": self.pid,
            "session": self.session_id,
            "command": self.command,
            "ageSeconds": round(self.age_seconds, 1),
        }


def marked_processes(home: Home, session_ids: set[str] | None = None) -> list[Orphan]:
    """Our processes that carry this home's marker (optionally of the given sessions)."""
    uid = os.getuid()
    me = os.getpid()
    home_str = str(home.root)
    found: list[Orphan] = []
    now = time.time()
    for proc in psutil.process_iter(["uids", "create_time"]):
        try:
            if proc.pid == me or proc.info["uids"] is None or proc.info["uids"].real != uid:
                continue
            env = proc.environ()
        except (psutil.Error, OSError):
            continue
        sid = env.get("AGENTTY_SESSION_ID")
        if not sid or env.get("AGENTTY_HOME") != home_str:
            continue
        if session_ids is not None and sid not in session_ids:
            continue
        try:
            command = " ".join(proc.cmdline())[:200] or proc.name()
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue
        except psutil.Error:
            continue
        age = now - float(proc.info["create_time"] or now)
        found.append(Orphan(proc.pid, sid, command, age, proc))
    return found


def live_worker(orphan: Orphan, home: Home) -> psutil.Process | None:
    """The worker still serving the session of a process found by its marker, if one does:
    an ancestor listening on the session's socket (bound there, even if the file was
    removed since). A session missing from the list (dropped by a rebuild of a corrupt one
    while its worker was stopped, or its socket removed) is not orphaned: its programs
    must not be ended as if it were."""
    path = str(home.socket_path(orphan.session_id))
    try:
        parent = orphan.process.parent()
        while parent is not None and parent.pid > 1:
            listed = getattr(parent, "net_connections", None) or parent.connections  # psutil<6
            if any(str(c.laddr) == path for c in listed(kind="unix")):
                return parent
            parent = parent.parent()
    except (psutil.Error, OSError):
        pass
    return None


def end(
    orphans: list[Orphan],
    grace: float = 1.0,
    again: Callable[[], list[Orphan]] | None = None,
) -> KillResult:
    """HUP -> TERM -> KILL the given processes (re-checked each round, identity-safe), and
    with `again`, those it finds each round too: what they forked meanwhile."""
    procs = {o.pid: o.process for o in orphans}

    def targets() -> list[psutil.Process]:
        if again is not None:
            procs.update((o.pid, o.process) for o in again())
        return list(procs.values())

    return run_sync(ladder(targets, grace=grace))


def end_session(
    home: Home, session_id: str, known: list[tuple[object, object]], grace: float
) -> tuple[KillResult, list[int]]:
    """HUP -> TERM (each +CONT) -> KILL a session's processes without its worker: those the record
    names by (pid, start token), the worker and the program, and every process carrying the
    session's marker, gathered afresh each round; with the pids it went after. A handle is
    made before the identity check, so the handle (which refuses to signal a reused pid)
    guards the very process checked."""
    named: list[psutil.Process] = []
    for pid, token in known:
        if not isinstance(pid, int) or not isinstance(token, str):
            continue
        try:
            proc = psutil.Process(pid)
        except psutil.Error:
            continue
        if identity.same_process(pid, token):
            named.append(proc)

    seen: dict[int, None] = {}

    def targets() -> list[psutil.Process]:
        procs = {p.pid: p for p in named}
        procs.update((o.pid, o.process) for o in marked_processes(home, {session_id}))
        seen.update(dict.fromkeys(procs))
        return list(procs.values())

    return run_sync(ladder(targets, grace=grace)), list(seen)
