"""What the dashboard knows about sessions, read from core records, and how it is shown."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from agentty_core.proc.orphans import Orphan
from agentty_core.proc.usage import Usage
from agentty_core.state.records import Record


def timestamp(value: object) -> float | None:
    """Epoch seconds of an ISO time from a record; None when absent or malformed."""
    if not isinstance(value, str):
        return None
    try:
        return dt.datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


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
    argv = record.get("argv")
    if isinstance(argv, list) and argv:
        return str(argv[0]).rsplit("/", 1)[-1]
    return str(record.get("program") or "?")


@dataclass(frozen=True)
class Snapshot:
    """One poll: every record, usage of running ones, and orphans (None: not looked)."""

    records: list[Record]
    usage: dict[str, Usage] = field(default_factory=dict)
    orphans: list[Orphan] | None = None
