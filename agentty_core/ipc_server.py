"""The worker's side of the socket: accepting, framing and writing, on the event loop's own
readiness callbacks.

asyncio's streams cost a task wake-up, a transport and a future per request; on the kind of
machine agentty runs on, that is 0.15 ms of a 0.2 ms round trip. Here a readable socket is read
in its callback and a complete request line is handed to the worker at once, which answers
in the same callback when it can (`get`, `text`, `key`, a `wait` already satisfied) and
through a future otherwise. Requests on one connection are answered in order: while one is
pending, the lines after it wait in the buffer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable

from . import protocol
from .ipc_client import peer_credentials

log = logging.getLogger("agentty.worker")

RECV = 1 << 16
HIGH_WATER = 1 << 20  # unsent bytes above which a streaming writer waits for the peer


class Peer:
    """One client connection: newline-framed requests in, response lines out."""

    def __init__(
        self, server: Server, sock: socket.socket, idle_timeout: float, max_line: int
    ) -> None:
        self.server = server
        self.sock = sock
        self.fd = sock.fileno()
        self.loop = server.loop
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.busy = False  # a request is being answered later; the next lines wait
        self.paused = False  # not reading: a line's worth is already waiting behind `busy`
        self.discard_input = False  # a subscribed connection carries nothing more in
        self.closed = False
        self.close_when_flushed = False
        self.idle_timeout = idle_timeout
        self.max_line = max_line
        self.on_close: list[Callable[[], None]] = []
        self._drained: asyncio.Future[None] | None = None
        self._idle = self.loop.call_later(idle_timeout, self.close)
        self.loop.add_reader(self.fd, self._on_readable)

    # -- reading ---------------------------------------------------------------------------

    def _on_readable(self) -> None:
        try:
            data = self.sock.recv(RECV)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.close()
            return
        if not data:
            self.close()
            return
        if self.discard_input:
            return
        self.inbuf += data
        self.take_lines()
        if self.busy and len(self.inbuf) > self.max_line and not self.closed:
            self.loop.remove_reader(self.fd)  # the kernel's buffer holds the rest meanwhile
            self.paused = True

    def take_lines(self) -> None:
        """Hand complete lines to the server, one at a time, unless one is still pending."""
        while not self.busy and not self.closed and not self.close_when_flushed:
            end = self.inbuf.find(b"\n")
            if end < 0:
                if len(self.inbuf) > self.max_line:
                    self.send(protocol.error("too_large", "request line too long"))
                    self.finish()
                return
            if end + 1 > self.max_line:
                self.send(protocol.error("too_large", "request line too long"))
                self.finish()
                return
            line = bytes(self.inbuf[: end + 1])
            del self.inbuf[: end + 1]
            self._idle.cancel()
            self._idle = self.loop.call_later(self.idle_timeout, self.close)
            self.server.on_request(self, line)

    def resume(self) -> None:
        """The pending request was answered: go on with the lines that queued behind it."""
        self.busy = False
        self.take_lines()
        if self.paused and not self.closed:
            self.paused = False
            self.loop.add_reader(self.fd, self._on_readable)

    # -- writing ---------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        """Write now if the socket takes it; keep the rest and write it when writable."""
        if self.closed:
            return
        if not self.outbuf:
            try:
                sent = self.sock.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                self.close()
                return
            if sent == len(data):
                return
            data = data[sent:]
            self.loop.add_writer(self.fd, self._on_writable)
        self.outbuf += data

    @property
    def unsent(self) -> int:
        return len(self.outbuf)

    def _on_writable(self) -> None:
        try:
            sent = self.sock.send(self.outbuf)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.close()
            return
        del self.outbuf[:sent]
        if self.outbuf:
            return
        self.loop.remove_writer(self.fd)
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
        if self.close_when_flushed:
            self.close()

    async def drain(self) -> None:
        """Wait while the peer is far behind (a streaming writer's back-pressure)."""
        if len(self.outbuf) <= HIGH_WATER or self.closed:
            return
        self._drained = self.loop.create_future()
        await self._drained

    # -- closing ---------------------------------------------------------------------------

    def finish(self) -> None:
        """Close once everything queued is written."""
        self.close_when_flushed = True
        if not self.outbuf:
            self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._idle.cancel()
        if not self.paused:
            self.loop.remove_reader(self.fd)
        if self.outbuf:
            self.loop.remove_writer(self.fd)
        self.sock.close()
        if self._drained is not None and not self._drained.done():
            self._drained.set_exception(ConnectionResetError("connection closed"))
            self._drained.exception()  # retrieved: nobody may be waiting on it
        self.server.peers.discard(self)
        for callback in self.on_close:
            callback()


class Server:
    """The listening socket; `on_request(peer, line)` answers each request line."""

    def __init__(
        self,
        path: str,
        on_request: Callable[[Peer, bytes], None],
        *,
        max_connections: int,
        idle_timeout: float,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.path = path
        self.on_request = on_request
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self.peers: set[Peer] = set()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.sock.bind(path)
            self.sock.listen(64)
            self.sock.setblocking(False)
        except OSError:
            self.sock.close()
            raise
        self.loop.add_reader(self.sock.fileno(), self._on_connect)

    def _on_connect(self) -> None:
        try:
            conn, _ = self.sock.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            log.warning("accept failed: %s", exc)
            return
        try:
            _, uid, _ = peer_credentials(conn)
        except OSError:
            uid = -1
        if uid != os.getuid():
            log.warning("refused a connection from uid %s", uid)
            conn.close()
            return
        if len(self.peers) >= self.max_connections:
            with contextlib.suppress(OSError):
                conn.send(protocol.error("busy", "too many connections"))
            conn.close()
            return
        conn.setblocking(False)
        self.peers.add(Peer(self, conn, self.idle_timeout, protocol.MAX_LINE + 1))

    def adopt(self, old: Server) -> None:
        """Take over the connections of a server whose socket was re-created."""
        for peer in old.peers:
            peer.server = self
        self.peers |= old.peers
        old.peers.clear()

    def close(self) -> None:
        """Stop accepting; connections already made stay open."""
        if self.sock.fileno() >= 0:
            self.loop.remove_reader(self.sock.fileno())
            self.sock.close()

    def close_all(self) -> None:
        for peer in list(self.peers):
            peer.finish()
