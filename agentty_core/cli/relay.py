"""`agentty relay SESSION`: this process's stdin and stdout, bridged to the session's socket.

Run on the far side of an ssh channel (`ssh box agentty relay ID`), it lets a caller on
another machine speak the worker's own newline-delimited JSON protocol (requests, answers,
`subscribe` streams, long waits) with no protocol of ours in between. The session is found
and its worker checked as for any command (the socket's peer must be the recorded worker);
an unknown or ended session is the usual one-line error and exit code, before any byte.

A request line carrying `within` (a caller on another machine: another clock) has it made
`until` here as it goes on (`protocol`: late requests). End of stdin half-closes the
socket, so answers still pending are delivered; the relay ends
when the worker closes the connection or stdout goes away. A pipe's reader going away (the
ssh channel closed: the caller cancelled a wait, or died) is seen at once, not at the next
answer, so the connection closes and the worker drops a pending wait then, not at its
timeout.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import socket
import stat

from agentty_core.client import Client
from agentty_core.errors import WorkerUnreachable
from agentty_core.ipc.client import Connection
from agentty_core.protocol import MAX_LINE, stamped

CHUNK = 1 << 16


def relay(ref: str | None, stdin: int = 0, stdout: int = 1) -> int:
    client = Client()
    rec = client.require_running(ref)
    pid = rec.get("workerPid")
    conn = Connection(
        str(client.home.socket_path(str(rec["id"]))),
        timeout=client.timeout,
        expect_pid=pid if isinstance(pid, int) else None,
    )
    try:
        return _bridge(conn.sock, stdin, stdout)
    finally:
        conn.close()


def _bridge(sock: socket.socket, stdin: int, stdout: int) -> int:
    sock.settimeout(None)  # blocking, no SO_RCVTIMEO: a subscription is silent for long
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, bytes(16))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, bytes(16))
    # poll, not epoll: stdin may be a regular file or /dev/null (requests from a file),
    # which epoll refuses (EPERM) and poll reports always readable.
    sel = selectors.PollSelector()
    lines = _Lines()
    answered = False  # the worker's answers went on to the caller
    sel.register(stdin, selectors.EVENT_READ, "in")
    sel.register(sock, selectors.EVENT_READ, "sock")
    if _is_pipe(stdout):  # a pipe's write end reports only an error: its reader is gone
        sel.register(stdout, selectors.EVENT_READ, "out")
    try:
        while True:
            for key, _ in sel.select():
                if key.data == "out":
                    return 0  # nobody reads any more: the far end went away
                if key.data == "in":
                    try:
                        data = os.read(stdin, CHUNK)
                    except OSError:
                        data = b""
                    failed = _send(sock, lines.take(data) if data else lines.rest())
                    if failed is not None:  # it closed: a line over its limit, say
                        return _last_answers(sock, stdout, failed, answered)
                    if not data:  # (an unfinished last line went as it came)
                        sel.unregister(stdin)  # the caller is done asking: answers may follow
                        with contextlib.suppress(OSError):
                            sock.shutdown(socket.SHUT_WR)
                else:
                    try:
                        data = sock.recv(CHUNK)
                    except OSError:
                        data = b""
                    if not data:
                        return 0  # the worker closed the connection
                    try:
                        _write_all(stdout, data)
                    except OSError:
                        return 0  # nobody reads any more: the far end went away
                    answered = True
    finally:
        sel.close()


class _Lines:
    """The caller's bytes as whole request lines (split at newlines only), each stamped
    (`protocol.stamped`). A line longer than the worker reads (MAX_LINE) is not held: it
    goes on as it comes, and the worker refuses it."""

    def __init__(self) -> None:
        self.partial = bytearray()  # the start of a line not read whole yet
        self.passing = False  # in a line too long to stamp: its bytes go on as they come

    def take(self, data: bytes) -> bytes:
        """What goes on to the worker of `data`, the next bytes read."""
        out = []
        start = 0
        while start < len(data):
            end = data.find(b"\n", start) + 1 or len(data)
            piece = data[start:end]
            whole = piece.endswith(b"\n")
            if self.passing:
                out.append(piece)
                self.passing = not whole
            elif whole:
                out.append(stamped(bytes(self.partial) + piece))
                self.partial.clear()
            else:
                self.partial += piece
                if len(self.partial) > MAX_LINE:
                    out.append(bytes(self.partial))
                    self.partial.clear()
                    self.passing = True
            start = end
        return b"".join(out)

    def rest(self) -> bytes:
        rest = bytes(self.partial)
        self.partial.clear()
        return rest


def _send(sock: socket.socket, data: bytes) -> OSError | None:
    """Why the worker could not be sent `data` (it closed the connection), or None."""
    try:
        if data:
            sock.sendall(data)
    except OSError as exc:
        return exc
    return None


def _last_answers(sock: socket.socket, stdout: int, failed: OSError, answered: bool) -> int:
    """The worker closed while requests were still going to it: what it answered (its
    refusal of a line over the limit, `too_large`) still reaches the caller. Nothing
    answered at all, the connection failed."""
    with contextlib.suppress(OSError):
        sock.settimeout(1.0)
        while data := sock.recv(CHUNK):
            answered = True
            _write_all(stdout, data)
    if not answered:
        raise WorkerUnreachable(f"worker connection failed: {failed}", "send_failed")
    return 0


def _is_pipe(fd: int) -> bool:
    try:
        return stat.S_ISFIFO(os.fstat(fd).st_mode)
    except OSError:
        return False


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
