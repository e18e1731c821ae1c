"""The local end of `agentty relay`: a worker connection that runs through ssh.

`RelayConnection` speaks the worker's protocol over the stdin and stdout of
`ssh HOST agentty relay SESSION`, with the same calls as `ipc.client.Connection` (send,
read_message with a deadline, call); `RemoteSubscription` is `ipc.subscription.Subscription`
across the link. When the relay ends, its exit code and stderr say why: a failed link is a
`TransportError`, a refusal of the remote agentty (no such session, session ended) the
error a local call raises.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import threading
import time
from collections.abc import Callable, Iterator

from agentty_core import protocol
from agentty_core.errors import (
    AgenttyError,
    ProtocolError,
    RemoteError,
    SessionNotFound,
    SessionNotRunning,
    SpawnError,
    UsageError,
    WaitTimeout,
    WorkerUnreachable,
)
from agentty_core.ipc.client import unwrap
from agentty_core.ipc.subscription import subscribe_params
from agentty_core.remote import transport
from agentty_core.remote.hosts import Host


def cli_error(code: int, stderr: str, screen: dict[str, object] | None = None) -> AgenttyError:
    """The error a remote `agentty` call ended with, as a local call raises it."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    said = [line.removeprefix("agentty: error: ") for line in lines if line.startswith("agentty:")]
    # Nothing said: agentty there, or the transport's own command before it (`command =
    # ["false"]`: agentty never ran, and "remote agentty exited 1" blamed it).
    silent = f"exited {code} without a word (the host's command, or agentty there)"
    message = (said or lines or [silent])[-1].strip()
    if code == 2:
        if message.startswith("no such session: "):
            return SessionNotFound(message.removeprefix("no such session: "))
        return UsageError(message)
    if code == 3:
        return WaitTimeout(message, screen)
    if code in (126, 127):
        return SpawnError(message, exit_code=code)
    words = message.split(" ", 2)
    ended = ("exited", "failed", "is lost", "already")
    if code == 1 and len(words) == 3 and words[0] == "session" and words[2].startswith(ended):
        # (A wait the end made impossible printed the last screen: kept, as a local one.)
        last = screen if screen is not None and "lines" in screen else None
        return SessionNotRunning(words[1], words[2], last)
    return RemoteError(message, code="remote", exit_code=code)


class RelayTimeout(WorkerUnreachable):
    """No answer before the deadline; the relay itself is still up."""


class RelayConnection:
    """One `agentty relay SESSION` on `host`: requests in order, answers as they come."""

    def __init__(self, host: Host, ref: str, home_root: os.PathLike[str]) -> None:
        self.host = host
        self.ref = ref
        self.proc = transport.open_pipe(host, ["relay", ref], home_root)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._in = self.proc.stdin
        self._out = self.proc.stdout.fileno()
        self._buf = b""
        self._failure: AgenttyError | None = None

    def alive(self) -> bool:
        return self.proc.poll() is None and not self._buf

    def _ended(self) -> AgenttyError:
        """Why the relay ended: the link, the remote agentty's refusal, or the worker."""
        if self._failure is None:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            stderr = ""
            with contextlib.suppress(OSError, ValueError, AttributeError):  # closed meanwhile
                stderr = self.proc.stderr.read().decode("utf-8", "replace")  # type: ignore[union-attr]
            code = self.proc.returncode
            failure: AgenttyError | None = transport.classify(self.host, code, stderr)
            if failure is None and code not in (0, -9, -15):
                failure = cli_error(code, stderr)
            self._failure = failure or WorkerUnreachable(
                f"{self.host.name}: the relay to session {self.ref} closed (it may have exited)",
                "closed",
            )
        return self._failure

    def send(
        self, method: str, params: protocol.JSONObject | None = None, within: float | None = None
    ) -> None:
        try:
            self._in.write(protocol.request(method, params, within=within))
            self._in.flush()
        except (OSError, ValueError):
            raise self._ended() from None

    def read_message(self, deadline: float | None = None) -> protocol.JSONObject:
        """The next message. Chunks are joined once and only the new one is searched (as
        `ipc.client` reads), and a line is read no further than MAX_ANSWER_LINE (as the async
        relay's reader): before, a 200 MiB line was copied and searched again per chunk."""
        parts = [self._buf]
        chunk, size = self._buf, len(self._buf)
        try:
            while b"\n" not in chunk:
                if size > protocol.MAX_ANSWER_LINE:
                    parts.clear()
                    self.close()
                    self._failure = transport.too_large(self.host, protocol.MAX_ANSWER_LINE)
                    raise self._failure
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise RelayTimeout(
                        f"{self.host.name}: the worker did not answer in time", "timeout"
                    )
                ready, _, _ = select.select([self._out], [], [], remaining)
                if not ready:
                    continue
                try:
                    chunk = os.read(self._out, 1 << 16)
                except OSError:
                    chunk = b""
                if not chunk:
                    raise self._ended()
                parts.append(chunk)
                size += len(chunk)
        finally:
            self._buf = b"".join(parts)  # (a partial line stays: the relay is not kept then)
        line, _, self._buf = self._buf.partition(b"\n")
        try:
            message = json.loads(line)
        except (ValueError, RecursionError):
            raise ProtocolError("the relay sent a malformed response") from None
        if not isinstance(message, dict):
            raise ProtocolError("the relay sent a malformed response")
        return message

    def call(
        self, method: str, params: protocol.JSONObject | None = None, timeout: float = 5.0
    ) -> protocol.JSONObject:
        deadline = time.monotonic() + timeout  # before the send: its wait is the call's too
        acting = method in protocol.ACTING
        self.send(method, params, protocol.relayed_within(timeout) if acting else None)
        return unwrap(self.read_message(deadline))

    def terminate(self) -> None:
        """Stop the relay's process (from any thread): its reader sees the end of stdout."""
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                self.proc.terminate()

    def close(self) -> None:
        """End the relay: the ssh channel closes, and the far end with it."""
        with contextlib.suppress(OSError, ValueError):
            self._in.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


class RemoteSubscription:
    """A `subscribe` stream through a relay; the same interface as `Subscription`."""

    def __init__(
        self, host: Host, ref: str, home_root: os.PathLike[str], interval: float | None = None
    ) -> None:
        self._conn = RelayConnection(host, ref, home_root)
        self._lock = threading.Lock()
        self.closed = False
        self.ended = False
        self._reading = False  # a thread is in events(): it closes the pipes, not close()
        try:
            self._conn.send("subscribe", subscribe_params(interval))
        except AgenttyError:
            self._conn.close()
            raise

    def events(
        self, cancelled: Callable[[], bool] = lambda: False
    ) -> Iterator[protocol.JSONObject]:
        """Events until the session ends, `close()` is called or `cancelled()` is true."""
        with self._lock:
            if self.closed:
                return
            self._reading = True
        try:
            while not self.closed and not cancelled():
                try:
                    event = self._conn.read_message(time.monotonic() + 0.5)
                except RelayTimeout:
                    continue  # a quiet screen: look at closed/cancelled again
                except AgenttyError:
                    break
                yield event
            self.ended = not self.closed and not cancelled()
        finally:
            with self._lock:
                self.closed = True
                self._reading = False
            self._conn.close()

    def close(self) -> None:
        """Stop the stream; safe from any thread, any number of times. A reading thread
        wakes on the relay's end and closes the pipes itself (never under its feet)."""
        with self._lock:
            first, self.closed = not self.closed, True
            reading = self._reading
        if reading:
            self._conn.terminate()
        elif first:
            self._conn.close()
