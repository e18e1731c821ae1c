"""Rebuilding the session list from the workers themselves.

Used when `sessions.json` is corrupt: every live worker knows its own record and answers
`info`, so the list is never reset while sessions run. The asking is done by callers only,
outside the state lock (see `StateStore._mutate`). It sits beside `client`, above `state` and
`ipc`, because it needs both: the workers' sockets and the records' checks.
"""

from __future__ import annotations

from agentty_core.errors import AgenttyError
from agentty_core.ipc import client as ipc_client
from agentty_core.lazylog import LazyLogger
from agentty_core.paths import SESSION_ID_RE, Home
from agentty_core.state.records import Record, checked

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
    for name in names:
        session_id = name.removesuffix(".sock")
        if not name.endswith(".sock") or not SESSION_ID_RE.match(session_id):
            continue
        try:
            info = ipc_client.call(str(home.socket_path(session_id)), "info", timeout=timeout)
        except AgenttyError as exc:
            log.info("no live worker behind %s: %s", name, exc)
            continue
        record = checked(info.get("record"))
        if record is not None and record["id"] == session_id:
            found.append(record)
    return found
