"""Rebuilding the session list from the workers themselves.

Used when `sessions.json` is corrupt: every live worker knows its own record and answers
`info`, so the list is never reset while sessions run.
"""

from __future__ import annotations

import logging

from agentty_core.errors import AgenttyError
from agentty_core.ipc import client as ipc_client
from agentty_core.paths import SESSION_ID_RE, Home
from agentty_core.state.records import Record

log = logging.getLogger(__name__)


def rebuild_from_workers(home: Home, timeout: float = 1.0) -> list[Record]:
    found: list[Record] = []
    sock_dir = home.socket_dir()
    try:
        names = sorted(p.name for p in sock_dir.iterdir())
    except OSError:
        return found
    for name in names:
        session_id = name.removesuffix(".sock")
        if not name.endswith(".sock") or not SESSION_ID_RE.match(session_id):
            continue
        try:
            info = ipc_client.call(str(home.socket_path(session_id)), "info", timeout=timeout)
        except AgenttyError as exc:
            log.info("no live worker behind %s: %s", name, exc)
            continue
        record = info.get("record")
        if isinstance(record, dict) and record.get("id") == session_id:
            found.append(record)
    return found
