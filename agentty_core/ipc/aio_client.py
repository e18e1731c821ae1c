"""The worker's socket from asyncio: one request, one response, no thread held while waiting.

Speaks the same newline-delimited JSON as `ipc.client` and checks the same identity (the
peer's uid is ours, and its pid is the worker's the record names), so an async caller (the
MCP server, `AsyncSession`) can keep hundreds of `wait`s pending on a handful of file
descriptors instead of a thread each. A connection answers its requests in order: a caller
that wants several at once opens several connections (a connect costs ~0.1 ms).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from collections.abc import Awaitable

from agentty_core import protocol
from agentty_core.errors import ProtocolError, WorkerUnreachable
from agentty_core.ipc.client import _connect_failure, left_unread, sendable, unsent, unwrap
from agentty_core.ipc.peer import peer_credentials

READ_LIMIT = protocol.MAX_ANSWER_LINE


DRAINED_AT_ONCE = 1 << 16  # a line this long goes to the socket's buffer without a wait


async def _within(awaitable: Awaitable[None], seconds: float) -> None:
    """`asyncio.wait_for`, whose cancellation the 3.10/3.11 version may swallow when the
    awaited one ends at the same moment (a cancelled call then read on for its timeout)."""
    task = asyncio.ensure_future(awaitable)
    try:
        done, _ = await asyncio.wait({task}, timeout=seconds)
    except BaseException:
        task.cancel()
        raise
    if not done:
        task.cancel()
        raise asyncio.TimeoutError
    task.result()


class AsyncConnection:
    """A connection to one worker, for requests in order; close it when done."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        peer_pid: int,
        sock: socket.socket | None = None,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self.peer_pid = peer_pid
        self._loop = asyncio.get_running_loop()  # the only one it can be used in
        self._sock = sock

    @classmethod
    async def open(
        cls, path: str, *, timeout: float = 5.0, expect_pid: int | None = None
    ) -> AsyncConnection:
        """Connect and check who answers; WorkerUnreachable if nobody (or a stranger) does."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, path), timeout)
        except asyncio.TimeoutError:
            sock.close()
            raise WorkerUnreachable(f"cannot connect to {path}: timed out", "timeout") from None
        except OSError as exc:
            sock.close()
            raise WorkerUnreachable(*_connect_failure(path, exc)) from None
        except BaseException:
            sock.close()
            raise
        pid, uid, _ = peer_credentials(sock)
        if uid != os.getuid() or (expect_pid and pid and pid != expect_pid):
            sock.close()
            raise WorkerUnreachable(
                f"socket {path} is served by an unexpected process (pid {pid})", "wrong_peer"
            )
        reader, writer = await asyncio.open_unix_connection(sock=sock, limit=READ_LIMIT)
        return cls(reader, writer, pid, sock)

    def reusable(self) -> bool:
        """Open, and nothing unread: a worker closes idle connections (a full one evicts the
        longest idle with an error line), and one that ended closes them all."""
        unread = getattr(self._reader, "_buffer", b"")  # what arrived unasked, if anything
        if self._writer.is_closing() or self._reader.at_eof() or unread:
            return False
        try:  # (kept by an AsyncSession taken from one `asyncio.run` to the next)
            return asyncio.get_running_loop() is self._loop
        except RuntimeError:
            return False

    async def call(
        self, method: str, params: protocol.JSONObject | None = None, timeout: float = 5.0
    ) -> protocol.JSONObject:
        """Send a request and return its result, or raise the worker's error (RemoteError).

        Cancelled (the caller went away), the connection is closed: the worker then drops
        whatever it was answering, a pending wait included. One that acts says until when we
        wait (`protocol`: late requests), as `Connection.call` does."""
        deadline = time.monotonic() + timeout  # the request's going out counts too
        until = deadline if method in protocol.ACTING else None
        line = sendable(protocol.request(method, params, until))
        try:
            await self._send(line, timeout)
            left = max(0.0, deadline - time.monotonic())
            line = await asyncio.wait_for(self._reader.readline(), left)
        except asyncio.TimeoutError:
            unread = self._unread()  # (asked before the close drops what is queued)
            self.close()
            exc = WorkerUnreachable("worker did not answer in time", "timeout")
            exc.unread = unread
            raise exc from None
        except (OSError, ValueError) as exc:  # ValueError: a line over READ_LIMIT
            self.close()
            raise WorkerUnreachable(f"worker connection failed: {exc}", "recv_failed") from None
        except BaseException:
            self.close()
            raise
        if not line.endswith(b"\n"):
            self.close()
            raise WorkerUnreachable("worker closed the connection (it may have exited)", "closed")
        try:
            message = json.loads(line)
        except ValueError:
            self.close()
            raise ProtocolError("worker sent a malformed response") from None
        if not isinstance(message, dict):
            self.close()
            raise ProtocolError("worker sent a malformed response")
        return unwrap(message)

    async def _send(self, line: bytes, timeout: float) -> None:
        """The request out. A worker with every connection taken writes "busy" and closes
        before it reads anything: the request sent after that fails ("Connection lost",
        its "busy" unread), and is "send_failed" as the blocking client's is: nothing of
        it was read, so it may be sent again (it was "recv_failed", an unreachable worker,
        and the MCP server failed waits it should have asked again)."""
        try:
            self._writer.write(line)
            if len(line) > DRAINED_AT_ONCE:  # it may wait for the worker to read: bounded
                await _within(self._writer.drain(), timeout)
            else:
                await self._writer.drain()
        except OSError as exc:
            self.close()
            raise unsent(f"worker stopped answering: {exc}", "send_failed") from None

    def _unread(self) -> bool:
        """Whether the worker left what we sent unread: still in our buffer, or in the
        socket's (SIOCOUTQ), as `Connection._unread` asks. A timed-out request that typed
        was taken for one that may have been done, even when the worker never read it: not
        asked again the long way, where the blocking client asks it (a review)."""
        transport = self._writer.transport
        if transport.get_write_buffer_size() > 0:
            return True
        sock = transport.get_extra_info("socket")
        return sock is not None and left_unread(sock.fileno())

    def close(self) -> None:
        if self._loop.is_closed():  # its transport cannot close it now: the socket is ours
            if self._sock is not None:
                self._sock.close()
            return
        self._writer.close()
