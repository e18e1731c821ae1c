"""The relay from asyncio: a remote session's worker protocol with no thread held.

`AsyncRelay` is `RelayConnection` for an event loop (the MCP server): `ssh HOST agentty relay
SESSION` runs as a child whose pipes the loop reads and writes, so a pending wait on a remote
session holds two file descriptors and an ssh channel, never a thread. The child is spawned
with `subprocess.Popen` and reaped through a pidfd on the loop, not through asyncio's child
watcher (Python 3.11's default one starts a thread per child).

`RelayPool` bounds the relays open to one host: each is a channel of the host's one ssh
connection, and sshd allows 10 of those by default (MaxSessions), shared with the CLI's
calls. Idle relays are kept per session for the next call (a call on a kept relay costs a
round trip on an open channel) and closed, oldest first, when a new one needs the room.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import time

from agentty_core import protocol
from agentty_core.errors import AgenttyError, ProtocolError, WorkerUnreachable
from agentty_core.ipc.aio_client import READ_LIMIT
from agentty_core.ipc.client import unwrap
from agentty_core.remote import transport
from agentty_core.remote.hosts import Host
from agentty_core.remote.relay import RelayTimeout, cli_error

MAX_CHANNELS = 6  # relays open to one host at once (sshd's MaxSessions is 10 by default)
KEEP_PER_SESSION = 2  # idle relays kept per session
EXIT_PATIENCE = 10.0  # seconds a relay whose stdout ended has to exit with its reason
# Every relay child still running: `end_all` stops them when the process leaves without
# closing them (the MCP server's os._exit), since a relay whose stdin merely ends stays up
# until the answer it waits for (a pending wait: up to its timeout).
_RUNNING: set[subprocess.Popen[bytes]] = set()


class AsyncRelay:
    """One `agentty relay REF` on `host`: requests in order, each answered in turn."""

    def __init__(
        self,
        host: Host,
        ref: str,
        proc: subprocess.Popen[bytes],
        reader: tuple[asyncio.StreamReader, asyncio.BaseTransport],
        writer: asyncio.StreamWriter,
    ) -> None:
        self.host = host
        self.ref = ref
        self.proc = proc
        self._reader, self._read_end = reader
        self._writer = writer
        self._failure: AgenttyError | None = None

    @classmethod
    async def open(cls, host: Host, ref: str, home_root: os.PathLike[str]) -> AsyncRelay:
        """Start the relay (a fork and exec: nothing is read until the first answer), once
        the host's ssh master is up: that may take a connect timeout, so off the loop."""
        await asyncio.to_thread(transport.share_master, host, home_root)
        proc = transport.open_pipe(host, ["relay", ref], home_root, share=False)
        _RUNNING.add(proc)
        assert proc.stdin is not None and proc.stdout is not None
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=READ_LIMIT, loop=loop)
        try:
            read_end, _ = await loop.connect_read_pipe(
                lambda: asyncio.StreamReaderProtocol(reader, loop=loop), proc.stdout
            )
            transport_w, protocol_w = await loop.connect_write_pipe(
                lambda: asyncio.streams.FlowControlMixin(loop=loop), proc.stdin
            )
        except BaseException:
            _kill(proc)
            raise
        writer = asyncio.StreamWriter(transport_w, protocol_w, reader, loop)
        return cls(host, ref, proc, (reader, read_end), writer)

    def reusable(self) -> bool:
        """Running, and nothing arrived unasked (the relay says nothing between answers)."""
        unread = getattr(self._reader, "_buffer", b"")
        return (
            self._failure is None
            and self.proc.poll() is None
            and not self._reader.at_eof()
            and not self._writer.is_closing()
            and not unread
        )

    async def call(
        self, method: str, params: protocol.JSONObject | None = None, timeout: float = 5.0
    ) -> protocol.JSONObject:
        """Send a request, return its result or raise its error. The relay is closed on a
        timeout or a cancellation (the far end then ends with the channel)."""
        deadline = time.monotonic() + timeout  # before the send: its wait is the call's too
        try:
            try:
                acting = method in protocol.ACTING
                within = protocol.relayed_within(timeout) if acting else None
                self._writer.write(protocol.request(method, params, within=within))
                await self._writer.drain()
            except (OSError, RuntimeError):
                raise await self._ended() from None
            left = max(0.0, deadline - time.monotonic())
            try:
                line = await asyncio.wait_for(self._reader.readline(), left)
            except ValueError:  # a line over READ_LIMIT (asyncio's LimitOverrunError)
                self.close()
                self._failure = transport.too_large(self.host, READ_LIMIT)
                raise self._failure from None
        except asyncio.TimeoutError:
            self.close()
            raise RelayTimeout(
                f"{self.host.name}: the worker did not answer in time", "timeout"
            ) from None
        except BaseException:
            if self._failure is None:
                self.close()
            raise
        if not line.endswith(b"\n"):
            raise await self._ended()
        try:
            message = json.loads(line)
        except (ValueError, RecursionError):
            self.close()
            raise ProtocolError("the relay sent a malformed response") from None
        if not isinstance(message, dict):
            self.close()
            raise ProtocolError("the relay sent a malformed response")
        return unwrap(message)

    async def _ended(self) -> AgenttyError:
        """Why the relay ended: the link (TransportError), the remote agentty's refusal (no
        such session, ended), or the worker closing the connection."""
        if self._failure is not None:
            return self._failure
        if not await _exited(self.proc, EXIT_PATIENCE):
            _kill(self.proc)
        stderr = ""
        if self.proc.stderr is not None:  # what the exited relay said (never blocks the loop)
            with contextlib.suppress(OSError, ValueError):
                os.set_blocking(self.proc.stderr.fileno(), False)
                stderr = (self.proc.stderr.read() or b"").decode("utf-8", "replace")
        code = self.proc.returncode
        failure: AgenttyError | None = transport.classify(self.host, code, stderr)
        if failure is None and code not in (0, -9, -15):
            failure = cli_error(code, stderr)
        self._failure = failure or WorkerUnreachable(
            f"{self.host.name}: the relay to session {self.ref} closed (it may have exited)",
            "closed",
        )
        self._close_pipes()
        return self._failure

    def close(self) -> None:
        """End the relay now: its ssh channel closes, and the far end with it."""
        if self._failure is None:
            self._failure = WorkerUnreachable(f"{self.host.name}: relay closed", "closed")
        _kill(self.proc)
        self._close_pipes()

    def _close_pipes(self) -> None:
        self._writer.close()
        self._read_end.close()
        with contextlib.suppress(OSError, ValueError, AttributeError):
            self.proc.stderr.close()  # type: ignore[union-attr]
        _reap_later(self.proc)


def end_all() -> None:
    """Kill every relay child still running (their ssh channels close, and the far ends)."""
    for proc in list(_RUNNING):
        _kill(proc)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        _RUNNING.discard(proc)
    else:
        with contextlib.suppress(OSError):
            proc.kill()


async def _exited(proc: subprocess.Popen[bytes], patience: float) -> bool:
    """Whether the process exited within `patience` seconds (waited on a pidfd: no thread)."""
    if proc.poll() is not None:
        _RUNNING.discard(proc)
        return True
    try:
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        fd = -1
    loop = asyncio.get_running_loop()
    if fd < 0:  # no pidfd (an old kernel): look again every few milliseconds
        deadline = loop.time() + patience
        while proc.poll() is None and loop.time() < deadline:
            await asyncio.sleep(0.005)
        if proc.poll() is None:
            return False
        _RUNNING.discard(proc)
        return True
    done: asyncio.Future[None] = loop.create_future()

    def readable() -> None:
        if not done.done():
            done.set_result(None)

    loop.add_reader(fd, readable)
    try:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(done, patience)
    finally:
        loop.remove_reader(fd)
        os.close(fd)
    if proc.poll() is None:
        return False
    _RUNNING.discard(proc)
    return True


def _reap_later(proc: subprocess.Popen[bytes]) -> None:
    """Collect the killed child's exit status without waiting for it here."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(RuntimeError):  # no loop: the interpreter is going away
        asyncio.get_running_loop().create_task(_exited(proc, EXIT_PATIENCE))


class RelayPool:
    """The relays open to one host: at most `limit`, the idle ones kept per session."""

    def __init__(self, host: Host, home_root: os.PathLike[str], limit: int = MAX_CHANNELS) -> None:
        self.host = host
        self.home_root = home_root
        self._slots = asyncio.Semaphore(limit)
        self._idle: list[AsyncRelay] = []  # oldest first; each holds a slot

    async def acquire(self, ref: str) -> tuple[AsyncRelay, bool]:
        """A kept relay to `ref` if one is still good (True), else a new one (False)."""
        for relay in reversed(self._idle):
            if relay.ref == ref:
                self._idle.remove(relay)
                if relay.reusable():
                    return relay, True
                self._drop(relay)
        while self._slots.locked() and self._idle:
            self._drop(self._idle.pop(0))  # the oldest idle relay makes room
        await self._slots.acquire()
        try:
            return await AsyncRelay.open(self.host, ref, self.home_root), False
        except BaseException:
            self._slots.release()
            raise

    def release(self, relay: AsyncRelay) -> None:
        """Done with a relay: kept for its session when still good, else closed."""
        kept = sum(1 for r in self._idle if r.ref == relay.ref)
        if relay.reusable() and kept < KEEP_PER_SESSION:
            self._idle.append(relay)
        else:
            self._drop(relay)

    def forget(self, ref: str) -> None:
        """Close the idle relays to a session (it is being killed)."""
        for relay in [r for r in self._idle if r.ref == ref]:
            self._idle.remove(relay)
            self._drop(relay)

    def _drop(self, relay: AsyncRelay) -> None:
        relay.close()
        self._slots.release()

    def close(self) -> None:
        while self._idle:
            self._drop(self._idle.pop())
