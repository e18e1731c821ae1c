"""The one API the CLI and the dashboard use to talk to sessions.

Listing is lenient (a dead worker shows as `lost`, never raises); acting is loud (a missing,
exited or dead session is a specific error). Liveness is checked, never trusted from the
file: a running record whose worker is gone is marked `lost` on the spot, and its surviving
processes are reported as orphans.

The hot path (`get`, `text`, `key`, `wait`) imports only the standard library: it reads the
record, connects to the derived socket, and asks. psutil and filelock are imported only
when something must be written or a dead worker must be diagnosed.

Its parts, each with one job, lowest first: `client_records` (the state file, read and
checked), `client_calls` (connections to workers), `client_actions` (start, screen, input,
wait) and `client_ending` (kill, orphans, gc). Every name is importable from here.
"""

from __future__ import annotations

from agentty_core.client_actions import Actions
from agentty_core.client_ending import Ending
from agentty_core.client_records import (
    BEST_EFFORT_LOCK,
    DEFAULT_TIMEOUT,
    RECORD_PIDS,
    describe_end,
)
from agentty_core.protocol import JSONObject
from agentty_core.state import records

__all__ = [
    "BEST_EFFORT_LOCK",
    "DEFAULT_TIMEOUT",
    "RECORD_PIDS",
    "Client",
    "describe_end",
]


class Client(Actions, Ending):
    """Sessions of one agentty home."""

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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
