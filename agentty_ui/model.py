"""What the dashboard knows about sessions, read from core records, and how it is shown."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass, field

from agentty_core.client import Client
from agentty_core.errors import AgenttyError
from agentty_core.proc.orphans import Orphan
from agentty_core.proc.usage import Usage, UsageSampler
from agentty_core.screen_text import printable
from agentty_core.state.records import Record

from .fleet import split_key


def timestamp(value: object) -> float | None:
    """Epoch seconds of an ISO time from a record; None when absent or malformed. A time
    without its offset (hand-written) is UTC, as `gc` reads it, not local time."""
    if not isinstance(value, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.timestamp()


def format_age(seconds: float | None) -> str:
    """'12s', '5m', '3h', '2d': ages fit a narrow column."""
    if seconds is None:
        return "-"
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


def status_of(record: Record) -> str:
    """running / exited / lost (starting counts as running, failed as exited)."""
    status = record.get("status", "")
    return {"starting": "running", "failed": "exited"}.get(status, status)


def end_text(record: Record) -> str:
    """The exit column: a code, a signal name, or nothing while running."""
    if record.get("signal"):
        return str(record["signal"])
    code = record.get("exitCode")
    return "" if code is None else str(code)


def program_of(record: Record) -> str:
    """The program's name, escaped (its argv is the caller's, its bytes anything)."""
    argv = record.get("argv")
    if isinstance(argv, list) and argv:
        return printable(str(argv[0]).rsplit("/", 1)[-1])
    return printable(str(record.get("program") or "?"))


@dataclass(frozen=True)
class Snapshot:
    """One poll: every record, usage of running ones, and orphans (None: not looked).

    `sampled`: the sessions whose usage was looked at (None: every running one); the others
    keep what an earlier poll found. `live`: False for the quick listing read from the
    state file alone (no live fields, no usage) that fills the first frame."""

    records: list[Record]
    usage: dict[str, Usage] = field(default_factory=dict)
    orphans: list[Orphan] | None = None
    sampled: frozenset[str] | None = None
    live: bool = True


def name_of(record: Record) -> str:
    """The session's name, escaped (a hand-edited record's, a host's older agentty's)."""
    return printable(str(record.get("name") or ""))


def command_of(record: Record) -> str:
    """The session's command line, escaped."""
    return printable(str(record.get("command")))


def grid_label(key: str, record: Record) -> str:
    """`name` (or the id) here, `name@host` on a host, escaped."""
    sid, host = split_key(key)
    name = name_of(record) or sid
    return name if host is None else f"{name}@{printable(host)}"


def session_label(key: str, record: Record | None) -> str:
    """`key (name)`, or the key alone: how a toast or a bar names a session, escaped."""
    name = name_of(record) if record is not None else ""
    return f"{printable(key)} ({name})" if name else printable(key)


def some_of(items: list[str], shown: int = 8) -> str:
    """'a, b, c' or, past `shown`, the first ones 'and N more': a list that fits a dialog."""
    if len(items) <= shown:
        return ", ".join(items)
    return f"{', '.join(items[:shown])} and {len(items) - shown} more"


def processes(pids: object, kind: str) -> str:
    """'1 orphaned process: 7832', '3 orphaned processes: 1, 2, 3' from a result's list."""
    listed = [str(p) for p in pids] if isinstance(pids, list) else []
    plural = "es" if len(listed) != 1 else ""
    return f"{len(listed)} {kind} process{plural}: {some_of(listed)}"


def signals_sent(escalated: object) -> str:
    """' (sent SIGHUP, SIGTERM)': the signals it took, from a result's `escalated`."""
    if not isinstance(escalated, list) or not escalated:
        return ""
    return f" (sent {', '.join(str(s) for s in escalated)})"


def describe_kill(result: dict[str, object]) -> str:
    """'exited (signal SIGHUP)' from a kill result; for a lost session, what was left of
    it and ended, in words."""
    sid = result.get("id")
    if result.get("signal"):
        return f"{sid} exited (signal {result['signal']})"
    if result.get("exitCode") is not None:
        return f"{sid} exited (code {result['exitCode']})"
    if result.get("orphansKilled") is not None:
        left = result["orphansKilled"]
        ended = f"ended {processes(left, 'leftover')}" if left else "no process was left to end"
        head = f"{sid} was lost (its worker was gone)" if result.get("status") == "lost" else sid
        return f"{head}: {ended}{signals_sent(result.get('escalated'))}"
    return f"{sid} {result.get('status', 'ended')}"


def describe_end_orphans(result: dict[str, object]) -> str:
    """'ended 2 orphaned processes: 24309, 24310 (sent SIGHUP, SIGTERM)' from the result of
    `Client.end_orphans`."""
    if not result.get("killed"):
        return "no orphaned process was left to end"
    return f"ended {processes(result['killed'], 'orphaned')}{signals_sent(result.get('escalated'))}"


def quick_snapshot(client: Client) -> Snapshot:
    """The records as the state file has them (in a thread; a few ms): what the first frame
    lists while the first full poll asks every worker and samples every process tree."""
    return Snapshot(client.sessions(), live=False)


def take_snapshot(
    client: Client, sampler: UsageSampler, sweep: bool, only: Collection[str] | None = None
) -> Snapshot:
    """This machine's poll (in a thread): records with live activity, CPU and memory of the
    running ones (of those in `only`, when given: the rows in view), and orphans when
    `sweep` or a session is lost (None: not looked)."""
    records = client.sessions(live_info=True)
    pids = {
        r["id"]: r["pid"]
        for r in records
        if status_of(r) == "running"
        and isinstance(r.get("pid"), int)
        and (only is None or r["id"] in only)
    }
    usage = sampler.sample_all(pids)  # type: ignore[arg-type]
    orphans: list[Orphan] | None = None
    if sweep or any(r.get("status") == "lost" for r in records):
        try:
            orphans = client.orphans()
        except AgenttyError:
            orphans = None
    return Snapshot(records, usage, orphans, None if only is None else frozenset(only))


def merge_usage(old: dict[str, Usage], new: Snapshot) -> dict[str, Usage]:
    """The usage to show: this poll's samples, and what earlier polls found for the running
    sessions it did not sample (rows out of view)."""
    if new.sampled is None:
        return dict(new.usage)
    running = {r["id"] for r in new.records if status_of(r) == "running"}
    kept = {k: v for k, v in old.items() if k in running and k not in new.sampled}
    return {**kept, **new.usage}
