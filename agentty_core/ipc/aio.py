"""The socket client for asyncio: the same protocol and checks as `ipc.client`, awaited.

A call in flight owns its connection until the answer is read; a call that is cancelled
(a task that gave up on a wait) closes it, since the answer may still arrive on it. The
worker's identity is checked as in the blocking client: the peer's uid, and its pid when
the record names one.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket

from agentty_core import protocol
from agentty_core.errors import ProtocolError, WorkerUnreachable
from agentty_core.ipc.client import _connect_failure, unwrap
from agentty_core.ipc.peer import peer_credentials

# An answer line can be long (a screen with its scrollback); the worker bounds what it sends.
READ_LIMIT = 1 << 28


class AsyncConnection:
    """A connection to one worker; usable for several requests in order, one at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self.peer_pid = 0

    @classmethod
    async def open(
        cls, path: str, timeout: float = 5.0, expect_pid: int | None = None
    ) -> AsyncConnection:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_unix_connection(path, limit=READ_LIMIT), timeout
            )
        except asyncio.TimeoutError:
            raise WorkerUnreachable(f"cannot connect to {path}: timed out", "timeout") from None
        except OSError as exc:
            raise WorkerUnreachable(*_connect_failure(path, exc)) from None
        conn = cls(reader, writer)
        # asyncio hands out a TransportSocket, whose getsockopt reads SO_PEERCRED the same way.
        sock: socket.socket = writer.get_extra_info("socket")
        pid, uid, _ = peer_credentials(sock)
        if uid != os.getuid() or (expect_pid and pid and pid != expect_pid):
            conn.close()
            raise WorkerUnreachable(
                f"socket {path} is served by an unexpected process (pid {pid})", "wrong_peer"
            )
        conn.peer_pid = pid
        return conn

    def reusable(self) -> bool:
        """Open, and nothing unread on it (the worker closes idle connections)."""
        return not self._writer.is_closing() and not self._reader.at_eof()

    def close(self) -> None:
        self._writer.close()

    async def call(
        self, method: str, params: protocol.JSONObject | None = None, timeout: float = 5.0
    ) -> protocol.JSONObject:
        """Send a request and return its result, or raise the worker's error."""
        try:
            self._writer.write(protocol.request(method, params))
            await self._writer.drain()
        except OSError as exc:
            message = f"worker stopped answering: {exc.strerror or exc}"
            raise WorkerUnreachable(message, "send_failed") from None
        try:
            line = await asyncio.wait_for(self._reader.readuntil(b"\n"), timeout)
        except asyncio.TimeoutError:
            raise WorkerUnreachable("worker did not answer in time", "timeout") from None
        except asyncio.IncompleteReadError:
            message = "worker closed the connection (it may have exited)"
            raise WorkerUnreachable(message, "closed") from None
        except asyncio.LimitOverrunError:
            raise ProtocolError("worker sent an answer too long to read") from None
        except OSError as exc:
            message = f"worker connection failed: {exc.strerror}"
            raise WorkerUnreachable(message, "recv_failed") from None
        try:
            message = json.loads(line)
        except ValueError:
            raise ProtocolError("worker sent a malformed response") from None
        if not isinstance(message, dict):
            raise ProtocolError("worker sent a malformed response")
        return unwrap(message)
