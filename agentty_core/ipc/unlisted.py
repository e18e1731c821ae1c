"""Sessions whose sockets no record names: a list restored from a backup, or hand-edited.

Readers bring such a running session back to the list (`recovery.running_unrecorded`);
`start --name` must not give its name to a second session meanwhile (`intent.claim`). Both
begin with the socket directory, which is one `listdir` when nothing is missing.
"""

from __future__ import annotations

import os

from agentty_core.errors import AgenttyError
from agentty_core.ipc import client as ipc_client
from agentty_core.paths import SESSION_ID_RE, Home

ASK_TIMEOUT = 1.0  # seconds for all the workers asked to say who they are
ASK_GRACE = 0.05  # what an ask after that still gets: a worker answers in a millisecond


def unrecorded_sockets(home: Home, known: set[str]) -> list[str]:
    """The ids of session sockets in `home` that no record names (the spawner's apart, and
    another home's in a shared directory: asked, a stopped one held up every reader)."""
    try:
        names = os.listdir(home.socket_dir())
    except OSError:
        return []
    ids = (name.removesuffix(".sock") for name in names if name.endswith(".sock"))
    return sorted(
        i
        for i in ids
        if i not in known and SESSION_ID_RE.fullmatch(i) and home.owns_session_socket(i)
    )


def running_names(home: Home, known: set[str]) -> set[str]:
    """The names of this home's running sessions behind sockets no record names (their
    workers asked, within ASK_TIMEOUT for all: this runs under the state lock; one that
    does not answer, stopped say, names nothing)."""
    import time

    names = set()
    deadline = time.monotonic() + ASK_TIMEOUT
    for session_id in unrecorded_sockets(home, known):
        wait = max(deadline - time.monotonic(), ASK_GRACE)
        try:
            info = ipc_client.call(str(home.socket_path(session_id)), "info", timeout=wait)
        except AgenttyError:
            continue
        record = info.get("record")
        if not isinstance(record, dict) or record.get("log") != str(home.log_path(session_id)):
            continue  # another home's (a shared socket directory)
        if record.get("status") == "running" and isinstance(record.get("name"), str):
            names.add(record["name"])
    return names
