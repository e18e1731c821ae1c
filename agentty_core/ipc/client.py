"""The thin socket client: one request, one response, a deadline on everything.

Stdlib only, since `get`, `text` and `key` are on the CLI's hot path. The worker's identity
is checked from our side too: SO_PEERCRED tells which pid answered, so a socket bound by some
other process can never receive keystrokes meant for a session.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import struct
import sys
import time
from collections.abc import Iterator

from agentty_core import protocol
from agentty_core.errors import (
    EXIT_USAGE,
    NO_ANSWER,
    ProtocolError,
    ProtocolMismatch,
    RefusedRequest,
    RemoteError,
    WorkerUnreachable,
)
from agentty_core.ipc.peer import peer_credentials

TYPE_CHECKING = False  # without importing typing: this module is on the hot path
if TYPE_CHECKING:
    from collections.abc import Callable

    from agentty_core.errors import UnreachableReason

_TIMEVAL = struct.Struct("@ll")  # struct timeval: seconds, microseconds
# A worker reads every request as it comes (it answers later, an input part once there is
# room for it): one that takes no byte of ours for this long is stopped or wedged, or its
# loop was held that long (a huge screen encoded on a loaded machine: the request then
# fails, saying what of an input in parts was taken). The answer may take longer (a part
# waits for room up to the part timeout): not its sending.
SEND_STALL = 5.0
LOOK_EVERY = 1.0  # how often a long wait for an answer looks whether the worker still runs


class Late(WorkerUnreachable):
    """The worker read the request after its `until` (stopped until then) and refused it,
    `late`: not done, so asking again cannot do it twice, as for one it never read."""


def unsent(message: str, reason: UnreachableReason) -> WorkerUnreachable:
    """A failure before the worker could read the request: no connection, or the line not
    sent whole (a worker reads a request at its newline, and drops a line left without one
    when the connection closes). Nothing of it was done: `unread`."""
    exc = WorkerUnreachable(message, reason)
    exc.unread = True
    return exc


def left_unread(fd: int) -> bool:
    """Whether the peer left bytes we sent on socket `fd` unread (SIOCOUTQ: what it has
    not taken from the socket); False where that cannot be asked."""
    import fcntl
    import termios

    try:
        queued = fcntl.ioctl(fd, termios.TIOCOUTQ, b"\0\0\0\0")
    except OSError:
        return False
    return int.from_bytes(queued, sys.byteorder) > 0


def not_done(exc: WorkerUnreachable) -> bool:
    """Whether the worker surely did not act on the request, so that asking again cannot
    do it twice: it never read it (`unread`: still queued, never sent whole, no connection),
    or refused it as read too late (`Late`)."""
    return exc.unread or isinstance(exc, Late)


class Connection:
    """A connection to one worker; usable for several requests in order."""

    def __init__(self, path: str, timeout: float = 5.0, expect_pid: int | None = None) -> None:
        self.path = path
        self.timeout = timeout
        self._buf = b""
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(path)
        except OSError as exc:
            self.sock.close()
            raise unsent(*_connect_failure(path, exc)) from None
        # Blocking, with the deadline in the kernel (SO_RCVTIMEO) rather than Python's
        # poll-then-recv: waking from a blocking recv is several times faster (0.02 ms against
        # 0.13 ms a round trip on a small VM), and round trips are what agents pay for.
        self.sock.settimeout(None)
        self._set_deadline(socket.SO_SNDTIMEO, min(timeout, SEND_STALL))
        pid, uid, _ = peer_credentials(self.sock)
        if uid != os.getuid() or (expect_pid and pid and pid != expect_pid):
            self.sock.close()
            raise unsent(
                f"socket {path} is served by an unexpected process (pid {pid})", "wrong_peer"
            )
        self.peer_pid = pid

    def _set_deadline(self, option: int, seconds: float | None) -> None:
        """SO_RCVTIMEO / SO_SNDTIMEO; None waits forever (a zero timeval means that)."""
        micros = 0 if seconds is None else max(1, int(seconds * 1_000_000))
        self.sock.setsockopt(socket.SOL_SOCKET, option, _TIMEVAL.pack(*divmod(micros, 1_000_000)))

    def reusable(self) -> bool:
        """Still open, and nothing unread on it (a worker closes idle connections, and one
        that ended closed them all): cheap enough to ask before every reuse."""
        try:
            self.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            return not self._buf  # open, and quiet
        except OSError:
            pass
        return False  # closed (EOF), failed, or holding bytes nobody asked for

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send(
        self, method: str, params: protocol.JSONObject | None = None, until: float | None = None
    ) -> None:
        """Send one request line. One that fails did not go out whole (sendall gives up
        with bytes left, its newline last): the worker never read it, `unsent`."""
        line = sendable(protocol.request(method, params, until))
        try:
            self.sock.sendall(line)
        except (BlockingIOError, TimeoutError):  # a worker that stopped reading (stopped)
            raise unsent(NO_ANSWER, "timeout") from None
        except OSError as exc:  # one that closed the connection before reading it
            message = f"worker stopped answering: {exc.strerror or exc}"
            raise unsent(message, "send_failed") from None

    def read_message(self, deadline: float | None = None) -> protocol.JSONObject:
        # Chunks are joined once and only the new one is searched: a large screen's reply
        # (tens of MB under per-cell colour) must not cost a copy and a scan per chunk.
        parts = [self._buf]
        chunk = self._buf
        try:
            while b"\n" not in chunk:
                remaining = None
                if deadline is not None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise WorkerUnreachable("worker did not answer in time", "timeout")
                self._set_deadline(socket.SO_RCVTIMEO, remaining)
                try:
                    chunk = self.sock.recv(1 << 16)
                except (BlockingIOError, TimeoutError):  # EAGAIN: SO_RCVTIMEO ran out
                    raise WorkerUnreachable("worker did not answer in time", "timeout") from None
                except OSError as exc:
                    message = f"worker connection failed: {exc.strerror}"
                    raise WorkerUnreachable(message, "recv_failed") from None
                if not chunk:
                    message = "worker closed the connection (it may have exited)"
                    raise WorkerUnreachable(message, "closed")
                parts.append(chunk)
        except BaseException:
            self._buf = b"".join(parts)  # a partial reply stays: the connection is not reused
            raise
        line, _, self._buf = b"".join(parts).partition(b"\n")
        try:
            message = json.loads(line)
        except ValueError:
            raise ProtocolError("worker sent a malformed response") from None
        if not isinstance(message, dict):
            raise ProtocolError("worker sent a malformed response")
        return message

    def call(
        self,
        method: str,
        params: protocol.JSONObject | None = None,
        timeout: float | None = None,
        *,
        running: Callable[[], bool] | None = None,
    ) -> protocol.JSONObject:
        """Send a request and return its result, or raise the worker's error. One that acts
        says until when we wait: read later (the worker stopped meanwhile), it is not done
        (`Late`, or `unread` if the answer's wait ran out with the request still queued).
        A long answer (`kill`'s) is waited for while `running()` says the worker runs,
        looked at every LOOK_EVERY seconds: stopped, it is not waited for to the end."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        self.send(method, params, deadline if method in protocol.ACTING else None)
        session = os.path.basename(self.path).removesuffix(".sock")
        try:
            while True:
                look = deadline if running is None else min(deadline, time.monotonic() + LOOK_EVERY)
                try:
                    message = self.read_message(look)
                    break
                except WorkerUnreachable as exc:
                    if exc.reason != "timeout" or look >= deadline or running is None:
                        raise
                    if not running():
                        raise WorkerUnreachable("worker was stopped", "stopped") from None
        except WorkerUnreachable as exc:
            if exc.reason == "timeout":
                exc.unread = self._unread()
            raise
        return unwrap(message, session)

    def _unread(self) -> bool:
        return left_unread(self.sock.fileno())

    def stream(self) -> Iterator[protocol.JSONObject]:
        """Messages pushed by the worker after a `subscribe`, until it closes."""
        while True:
            yield self.read_message(None)


def sendable(line: bytes) -> bytes:
    """`line`, if the worker will read it. A worker refuses a longer one and closes while
    it is still being sent, and the sender sees only a broken pipe: refused here instead,
    with the worker's code, before anything is sent."""
    if len(line) > protocol.MAX_LINE:
        message = f"request line too long ({len(line)} > {protocol.MAX_LINE} bytes)"
        raise RemoteError(message, code="too_large")
    return line


def unwrap(message: protocol.JSONObject, session: str = "") -> protocol.JSONObject:
    """A response's result, or its error raised. A response of another protocol version is
    not read further: its fields may mean something else (`ProtocolMismatch`)."""
    if not protocol.same_version(message.get("v")):
        raise ProtocolMismatch(message.get("v"), protocol.PROTOCOL_VERSION, session)
    if message.get("ok") is True:
        result = message.get("result")
        return result if isinstance(result, dict) else {}
    err = message.get("error")
    if not isinstance(err, dict):
        raise ProtocolError("worker sent a malformed error")
    if err.get("code") == "late":  # read after its `until`: in time for nobody, not done
        raise Late("worker did not answer in time", "timeout")
    said = err.get("exit_code")
    exit_code = said if isinstance(said, int) else 1
    refused = RefusedRequest if exit_code == EXIT_USAGE else RemoteError
    raise refused(
        str(err.get("message", "worker error")),
        code=str(err.get("code", "error")),
        exit_code=exit_code,
    )


def _connect_failure(path: str, exc: OSError) -> tuple[str, UnreachableReason]:
    if exc.errno == errno.ENOENT:
        return f"socket {path} is missing", "socket_missing"
    if exc.errno == errno.ECONNREFUSED:
        return f"nothing listens on {path}", "refused"
    if exc.errno == errno.EACCES:
        return f"permission denied on {path}", "permission"
    return f"cannot connect to {path}: {exc.strerror or exc}", "connect_failed"


def call(
    path: str,
    method: str,
    params: protocol.JSONObject | None = None,
    timeout: float = 5.0,
    expect_pid: int | None = None,
) -> protocol.JSONObject:
    with Connection(path, timeout=timeout, expect_pid=expect_pid) as conn:
        return conn.call(method, params, timeout=timeout)


def rebind(pid: int, path: str, within: float) -> bool:
    """Tell a live worker whose socket file was removed to bind it again (SIGUSR1, R5);
    whether the file is back within `within` seconds."""
    import signal

    try:
        os.kill(pid, signal.SIGUSR1)
    except OSError:
        return False
    deadline = time.monotonic() + within
    while not os.path.exists(path):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
    return True


def remove_stale_socket(path: os.PathLike[str] | str) -> bool:
    """Unlink `path` only if it is a socket of ours that nobody answers on (R5).

    A file, a symlink or another user's socket is never touched; a live socket is kept."""
    import stat

    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    if not stat.S_ISSOCK(st.st_mode) or st.st_uid != os.getuid():
        return False
    if listened_on(path) is False:
        os.unlink(path)
        return True
    return False


def listened_on(path: os.PathLike[str] | str) -> bool | None:
    """Does a process listen on the socket `path` (a worker still finishing, say)? None
    when that cannot be told (no such file, not allowed, a full backlog)."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)  # non-blocking: a stopped listener's full backlog is EAGAIN, not a wait
    try:
        probe.connect(os.fspath(path))
    except ConnectionRefusedError:
        return False
    except OSError:
        return None
    finally:
        probe.close()
    return True
