"""A session's screen as a stream of events pushed by its worker (`subscribe`).

The first event is the full screen, then only changed rows, coalesced by the worker to at
most ~30 a second (or one each `interval` seconds, when asked for fewer). The reader blocks
in `recv`, so `close()` can stop it from another thread: the dashboard runs one per visible
session in thread workers.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable, Iterator

from agentty_core.errors import WorkerUnreachable
from agentty_core.ipc import client as ipc_client
from agentty_core.protocol import JSONObject


def subscribe_params(interval: float | None) -> JSONObject | None:
    """A subscribe's params: `interval`, the fewest seconds between two events (a worker
    older than it sends ~30 a second whatever it is asked)."""
    return None if interval is None else {"interval": interval}


class Subscription:
    """A `subscribe` connection to one session's worker."""

    def __init__(
        self, path: str, expect_pid: int | None, timeout: float, interval: float | None = None
    ) -> None:
        self._conn = ipc_client.Connection(path, timeout=timeout, expect_pid=expect_pid)
        self._lock = threading.Lock()
        self.closed = False
        self.ended = False  # the worker closed the stream (the session ended)
        try:
            self._conn.send("subscribe", subscribe_params(interval))
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
