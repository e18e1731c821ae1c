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
import select
import socket
import time
from collections.abc import Callable

from agentty_core import protocol
from agentty_core.ipc.peer import peer_credentials

log = logging.getLogger("agentty.worker")

RECV = 1 << 16
HIGH_WATER = 1 << 20  # unsent bytes above which a connection's next requests wait
# A request line must be complete this long after its first byte arrived (while the server
# reads it): a client sending a byte a second would otherwise hold its slot forever.
REQUEST_DEADLINE = 30.0
# A connection this young that has not asked anything yet is not evicted for a newcomer
# (the newcomer is told "busy", which clients ask again on): it is a client about to send
# its request. Evicted, its request went unread and its client saw an error (a burst of
# MCP waits on one session: 16 of 300 failed so, the session healthy).
FRESH_GRACE = 1.0


class Peer:
    """One client connection: newline-framed requests in, response lines out.

    Reading stops while a pending request holds a line's worth of queued requests, while
    the answers are far ahead of the reader, and once the client closes its end (what was
    asked before is still answered). An idle connection is closed after `idle_timeout`;
    one waiting for an answer, or subscribed, is not idle. A request line still incomplete
    `request_deadline` after it began is refused and the connection closed.
    """

    def __init__(
        self,
        server: Server,
        sock: socket.socket,
        idle_timeout: float,
        max_line: int,
        request_deadline: float = REQUEST_DEADLINE,
    ) -> None:
        self.server = server
        self.sock = sock
        self.fd = sock.fileno()
        self.loop = server.loop
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.busy = False  # a request is being answered later; the next lines wait
        self.subscribed = False  # the connection carries screen events; nothing more comes in
        self.held = False  # the connection holds the session's life: nothing more comes in
        self.eof = False  # the client closed its end
        self.closed = False
        self.close_when_flushed = False
        self.idle_timeout = idle_timeout
        self.max_line = max_line
        self.request_deadline = request_deadline
        self.last_request_at = time.monotonic()  # or the connect: which idle peer to evict
        self.connected_at = self.last_request_at
        self.asked = False  # a whole request line came (not protected as fresh any more)
        self._line_started: float | None = None  # when the incomplete line in inbuf began
        self.on_close: list[Callable[[], None]] = []
        self._reading = False
        self._writing = False
        self._update_io()
        self._idle_at: float | None = time.monotonic() + idle_timeout
        self._idle = self.loop.call_later(idle_timeout, self._check_idle)

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
            self.eof = True
            if self.subscribed or self.held or (self.busy and _hung_up(self.fd)):
                self.close()  # gone for good: nobody will read the pending answer
                return
        elif not (self.subscribed or self.held):
            self.inbuf += data
        self.take_lines()

    def gone(self) -> bool:
        """The client closed its socket: nobody reads what is answered (its input, left in
        the socket while we were stopped, say, is not to be typed after it gave up). A
        connection we closed is gone too: its number may be another connection's by now."""
        return self.closed or _hung_up(self.fd)

    def take_lines(self) -> None:
        """Hand complete lines to the server, one at a time, unless one is still pending."""
        while self._can_take():
            end = self.inbuf.find(b"\n")
            if end < 0 or end + 1 > self.max_line:
                if end >= 0 or len(self.inbuf) > self.max_line:
                    self.send(protocol.error("too_large", "request line too long"))
                    self.finish()
                elif self.eof:
                    self.finish()  # a last line without its newline is dropped, as before
                break
            line = bytes(self.inbuf[: end + 1])
            del self.inbuf[: end + 1]
            self._line_started = None
            self.last_request_at = time.monotonic()
            self.asked = True
            self.server.on_request(self, line)
        if self.inbuf and self._line_started is None and self._can_take():
            self._line_started = time.monotonic()
            self._rearm(self.request_deadline)
        self._update_io()

    def _can_take(self) -> bool:
        return not (
            self.busy
            or self.closed
            or self.close_when_flushed
            or self.subscribed
            or self.held
            or len(self.outbuf) > HIGH_WATER
        )

    def resume(self) -> None:
        """The pending request was answered: go on with the lines that queued behind it."""
        self.busy = False
        self._line_started = None  # a line left waiting behind the request starts its time now
        self.take_lines()

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
        self.outbuf += data
        self._update_io()

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
        if not self.outbuf and self.close_when_flushed:
            self.close()
            return
        self.take_lines()  # answers had run far ahead: the reader caught up

    # -- the event loop's side -------------------------------------------------------------

    def _update_io(self) -> None:
        """Register for reading and writing exactly when needed, and time out idleness."""
        if self.closed:
            return
        want_read = not self.eof and (
            self.subscribed  # only to notice the client leaving
            or (
                not self.close_when_flushed
                and len(self.outbuf) <= HIGH_WATER
                and not (self.busy and len(self.inbuf) > self.max_line)
            )
        )
        if want_read != self._reading:
            if want_read:
                self.loop.add_reader(self.fd, self._on_readable)
            else:
                self.loop.remove_reader(self.fd)
            self._reading = want_read
        want_write = bool(self.outbuf)
        if want_write != self._writing:
            if want_write:
                self.loop.add_writer(self.fd, self._on_writable)
            else:
                self.loop.remove_writer(self.fd)
            self._writing = want_write
        self._active_at = time.monotonic()  # the loop's clock (loop.time() is a method call more)

    def is_idle(self) -> bool:
        """Nothing asked and unanswered, nothing to write, not subscribed: closing it loses
        nothing but a half-sent request."""
        return not (
            self.busy or self.subscribed or self.held or self.outbuf or self.close_when_flushed
        )

    def _check_idle(self) -> None:
        """One timer per connection, re-armed when it fires rather than on every request
        (cancelling and re-scheduling a timer per request was a tenth of a request's cost)."""
        self._idle_at = None
        if self.closed:
            return
        now = time.monotonic()
        wait = self.idle_timeout
        if self.is_idle():
            wait -= now - self._active_at
            if wait <= 0:
                self.close()
                return
        if self._line_started is not None and self._can_take():
            late = self.request_deadline - (now - self._line_started)
            if late <= 0:
                self.refuse("request_timeout", "request line not completed in time")
                return
            wait = min(wait, late)
        self._rearm(wait)

    def _rearm(self, wait: float) -> None:
        """Run the idleness check in `wait` seconds, unless it is due sooner already."""
        due = time.monotonic() + max(wait, 0.001)
        if self._idle_at is not None and self._idle_at <= due:
            return
        self._idle.cancel()
        self._idle_at = due
        self._idle = self.loop.call_later(max(wait, 0.001), self._check_idle)

    def refuse(self, code: str, message: str) -> None:
        """Say why in one error line, then close: the client reads that, not a bare EOF."""
        self.inbuf.clear()
        self.send(protocol.error(code, message))
        self.finish()

    # -- closing ---------------------------------------------------------------------------

    def finish(self) -> None:
        """Close once everything queued is written."""
        self.close_when_flushed = True
        if not self.outbuf:
            self.close()
        else:
            self._update_io()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._idle.cancel()
        if self._reading:
            self.loop.remove_reader(self.fd)
        if self._writing:
            self.loop.remove_writer(self.fd)
        self.sock.close()
        self.server.peers.discard(self)
        for callback in list(self.on_close):  # a callback may remove itself
            callback()


def _hung_up(fd: int) -> bool:
    """The client closed its socket (not only its sending half, which still wants the
    answer): a connection with a wait pending then stops counting against the limit at
    once, rather than when the wait ends (up to a day later)."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return any(events & select.POLLHUP for _, events in poller.poll(0))


class Server:
    """The listening socket; `on_request(peer, line)` answers each request line."""

    def __init__(
        self,
        path: str,
        on_request: Callable[[Peer, bytes], None],
        *,
        max_connections: int,
        idle_timeout: float,
        request_deadline: float = REQUEST_DEADLINE,
        fresh_grace: float = FRESH_GRACE,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.path = path
        self.on_request = on_request
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self.request_deadline = request_deadline
        self.fresh_grace = fresh_grace
        self.peers: set[Peer] = set()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            # Linux creates the socket file with the socket inode's mode (less the umask): set
            # it before `bind`, so nothing has to chmod the path afterwards (chmod follows a
            # symlink planted there between the bind and the chmod).
            os.fchmod(self.sock.fileno(), 0o600)
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
            # Out of descriptors, say: stop accepting for a second rather than spin.
            log.warning("accept failed: %s; pausing for a second", exc)
            self.loop.remove_reader(self.sock.fileno())
            self.loop.call_later(1.0, self._resume_accepting)
            return
        try:
            _, uid, _ = peer_credentials(conn)
        except OSError:
            uid = -1
        if uid != os.getuid():
            log.warning("refused a connection from uid %s", uid)
            conn.close()
            return
        if len(self.peers) >= self.max_connections and not self._evict_one():
            with contextlib.suppress(OSError):
                conn.send(protocol.error("busy", "too many connections"))
            conn.close()
            return
        conn.setblocking(False)
        self.peers.add(
            Peer(self, conn, self.idle_timeout, protocol.MAX_LINE + 1, self.request_deadline)
        )

    def _evict_one(self) -> bool:
        """Make room for a new client: close the idle connection that asked nothing for the
        longest (one that never completed a request counts from its connect), so connections
        that hold a slot without using it cannot lock clients out. False if none is idle:
        every slot waits for an answer, is subscribed or is a client still sending its
        first request (FRESH_GRACE)."""
        now = time.monotonic()
        idle = [
            peer
            for peer in self.peers
            if peer.is_idle() and (peer.asked or now - peer.connected_at >= self.fresh_grace)
        ]
        if not idle:
            return False
        oldest = min(idle, key=lambda peer: peer.last_request_at)
        log.info("all %d connections in use: closing the longest idle one", len(self.peers))
        oldest.refuse("evicted", "connection closed to serve a new client")
        if not oldest.closed:  # its error line is still being written: drop it all
            oldest.close()
        return True

    def _resume_accepting(self) -> None:
        if self.sock.fileno() >= 0:
            self.loop.add_reader(self.sock.fileno(), self._on_connect)

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
