"""Screen events from a worker, as a stream that another thread can stop.

`Client.subscribe` blocks in `recv` with no timeout and hides its socket, so a thread worker
running it could never be cancelled (an idle session would keep the app from exiting). This
is the same request over the same public pieces, with a `close()` that unblocks the reader.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable, Iterator

from agentty_core import ipc_client
from agentty_core.client import Client
from agentty_core.errors import WorkerUnreachable
from agentty_core.protocol import JSONObject


class Subscription:
    """A `subscribe` connection to one session's worker."""

    def __init__(self, client: Client, ref: str) -> None:
        rec = client.require_running(ref)
        path = str(client.home.socket_path(str(rec["id"])))
        pid = rec.get("workerPid")
        self._conn = ipc_client.Connection(
            path, timeout=client.timeout, expect_pid=pid if isinstance(pid, int) else None
        )
        self._lock = threading.Lock()
        self.closed = False
        self.ended = False  # the worker closed the stream (the session ended)
        try:
            self._conn.send("subscribe")
        except WorkerUnreachable:
            self._conn.close()
            raise
        # A short timeout, so the reading thread notices `close()` or a cancelled worker
        # even if a shutdown of the socket does not wake it.
        self._conn.sock.settimeout(0.5)

    def events(self, cancelled: Callable[[], bool] = lambda: False) -> Iterator[JSONObject]:
        """Events until the session ends, `close()` is called or `cancelled()` is true."""
        buf = b""
        try:
            while not self.closed and not cancelled():
                try:
                    chunk = self._conn.sock.recv(1 << 16)
                except TimeoutError:
                    continue
                except OSError:
                    break
                if not chunk:
                    break
                buf += chunk
                while b"\n" in buf:
                    line, _, buf = buf.partition(b"\n")
                    try:
                        event = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(event, dict):
                        yield event
            self.ended = not self.closed and not cancelled()
        finally:
            self.close()

    def close(self) -> None:
        """Stop the stream; safe from any thread, any number of times."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
        with contextlib.suppress(OSError):
            self._conn.sock.shutdown(socket.SHUT_RDWR)
        self._conn.close()


def merge_events(events: list[JSONObject]) -> JSONObject:
    """Fold queued screen events into one: the last size/cursor/title, every changed row."""
    merged: JSONObject = dict(events[-1])
    rows: dict[str, object] = {}
    for event in events:
        changed = event.get("rows")
        if isinstance(changed, dict):
            rows.update(changed)
    merged["rows"] = rows
    return merged
