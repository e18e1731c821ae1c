"""`AsyncSession`: `Session` for asyncio code (agent frameworks, MCP servers).

    from agentty_core import AsyncSession, WaitConditions

    async with await AsyncSession.start(["python3", "-q"]) as py:
        await py.wait(text=">>>")
        answer = await py.text("6*7", enter=True, wait=WaitConditions(regex=r"^42$"))

The same methods, arguments, results and errors as `Session`. Input, `get` and `wait` talk
to the worker over asyncio sockets, a connection per call in flight, so a `wait` in one task
never holds up `text` in another. Cancelling a wait closes its connection, so its answer
never lands on another call and no thread is tied up (the worker itself forgets the wait at
its timeout: a closed connection's pending request is not cancelled there today). What
needs the state file (start, find, kill, an ended session's last screen) runs the blocking
`Client` in a thread.
"""

from __future__ import annotations

import asyncio
import builtins
import os
from collections.abc import Awaitable, Callable, Iterable, Mapping
from functools import partial
from types import TracebackType
from typing import TYPE_CHECKING, TypeVar, overload

from agentty_core import wait_slots
from agentty_core.api_types import Screen, SessionEnded, SessionInfo, SessionWaitTimeout, WaitResult
from agentty_core.client import Client
from agentty_core.client_calls import Patience, kept_call_failed, may_have_acted
from agentty_core.errors import (
    AgenttyError,
    RemoteError,
    SessionNotRunning,
    UsageError,
    WaitTimeout,
    WorkerUnreachable,
)
from agentty_core.input_steps import Step, in_one_request, key_steps, send_steps, text_steps
from agentty_core.ipc.aio_client import AsyncConnection
from agentty_core.paths import Home
from agentty_core.protocol import JSONObject
from agentty_core.session import (
    GONE,
    MAX_IDLE,
    Resolved,
    Session,
    after_input,
    checked_flags,
    checked_wait,
    kill_failed,
    not_running,
    recorded,
    resolved_id,
    seq_of,
    wait_conditions,
)
from agentty_core.waitspec import WaitConditions

if TYPE_CHECKING:
    from agentty_core.remote.client import RemoteClient

T = TypeVar("T")


class AsyncSession:
    """One background PTY session, for asyncio."""

    def __init__(self, session_id: str, client: Client | RemoteClient | None = None) -> None:
        if client is not None and not isinstance(client, Client):
            raise UsageError("AsyncSession drives this machine's sessions; use Session for --host")
        self.client = client or Client()
        self.id = resolved_id(session_id, "an AsyncSession's id", self.client)
        self._idle: list[AsyncConnection] = []
        self._worker: tuple[str, int | None] | None = None  # socket path, worker pid

    async def _thread(self, func: Callable[..., T], *args: object, **kwargs: object) -> T:
        return await asyncio.to_thread(func, *args, **kwargs)

    async def _connection(self) -> AsyncConnection | None:
        while self._idle:
            conn = self._idle.pop()
            if conn.reusable():
                return conn
            conn.close()
        if self._worker is None:
            try:
                rec = await self._thread(self.client.require_running, self.id)
            except AgenttyError:
                return None
            pid = rec.get("workerPid")
            path = str(self.client.home.socket_path(self.id))
            self._worker = (path, pid if isinstance(pid, int) else None)
        path, pid = self._worker
        try:
            return await AsyncConnection.open(path, timeout=self.client.timeout, expect_pid=pid)
        except WorkerUnreachable:
            self._worker = None
            return None

    async def _fast(
        self, method: str, params: JSONObject, timeout: float | None = None
    ) -> JSONObject | None:
        """Ask the worker directly; None when that fails (the caller then goes the long way,
        through `Client`, which tells a dead worker from an ended session). Turned away
        unread ("busy": every connection taken), it is asked again for BUSY_PATIENCE, here
        in the loop (the long way would hold a thread and a connection for the call)."""
        waiting = Patience()
        while True:
            conn = await self._connection()
            if conn is None:
                return None
            try:
                result = await conn.call(
                    method, params, self.client.timeout if timeout is None else timeout
                )
            except BaseException as exc:  # (cancelled: "raise")
                failed = kept_call_failed(exc)
                if failed == "answered":
                    self._give(conn)
                    raise
                conn.close()
                if failed == "lost":
                    self.close()
                    if may_have_acted(method, exc):
                        raise  # (not asked again: it would be typed twice)
                    return None
                if failed == "again" and (pause := waiting.next()) is not None:
                    await asyncio.sleep(pause)  # (every connection taken): asked again
                    continue
                raise
            self._give(conn)
            return result

    def _give(self, conn: AsyncConnection) -> None:
        if len(self._idle) < MAX_IDLE and self._worker is not None:
            self._idle.append(conn)
        else:
            conn.close()

    async def _request(self, method: str, params: JSONObject) -> JSONObject:
        try:
            result = await self._fast(method, params)
            if result is None:
                result = await self._thread(self.client._call_running, self.id, method, params)
        except RemoteError as exc:
            raise not_running(self.id, exc) from None
        return result

    async def _send(self, steps: list[Step]) -> int:
        seqs = [seq_of(await self._request(method, params)) for method, params in steps]
        return seqs[0]

    def close(self) -> None:
        """Close the kept-open connections (the session itself runs on)."""
        self._worker = None
        while self._idle:
            self._idle.pop().close()
        self.client.let_go(self.id)  # (the one `kill` and the long way used)

    # ------------------------------------------------------------ finding and starting

    @classmethod
    async def start(
        cls,
        argv: Iterable[str],
        *,
        name: str | None = None,
        cwd: str | os.PathLike[str] | None = None,
        size: tuple[int, int] = (80, 24),
        env: Mapping[str, str] | None = None,
        shell: bool = False,
        home: Home | None = None,
        record: bool = False,
        record_input: bool = False,
        record_markers: bool = False,
    ) -> AsyncSession:
        """As `Session.start` (on this machine)."""
        started = await asyncio.to_thread(
            partial(Session.start, argv, name=name, cwd=cwd, size=size, env=env, shell=shell),
            home=home,
            record=record,
            record_input=record_input,
            record_markers=record_markers,
        )
        return cls(Resolved(started.id), started.client)

    @classmethod
    async def find(cls, ref: str, *, home: Home | None = None) -> AsyncSession:
        """A session by id, unique id prefix or name."""
        found = await asyncio.to_thread(Session.find, ref, home=home)
        return cls(Resolved(found.id), found.client)

    @classmethod
    async def list(cls, *, home: Home | None = None) -> builtins.list[SessionInfo]:
        return await asyncio.to_thread(Session.list, home=home)

    async def info(self) -> SessionInfo:
        return SessionInfo.from_record(await self._thread(self.client.resolve, self.id))

    def __repr__(self) -> str:
        return f"AsyncSession({self.id!r})"

    # ------------------------------------------------------------ I/O

    async def get(self, *, scrollback: bool = False) -> Screen:
        checked_flags(scrollback=scrollback)
        params: JSONObject = {"scrollback": scrollback}
        result = await self._fast("get", params)
        if result is None:  # ended: its last screen, from the file
            result = await self._thread(self.client.get, self.id, scrollback=scrollback)
        return Screen.from_json(result)

    @overload
    async def text(self, data: str | bytes, *, enter: bool = ..., wait: None = None) -> int: ...
    @overload
    async def text(
        self, data: str | bytes, *, enter: bool = ..., wait: WaitConditions
    ) -> WaitResult: ...
    async def text(
        self, data: str | bytes, *, enter: bool = False, wait: WaitConditions | None = None
    ) -> int | WaitResult:
        """As `Session.text`."""
        return await self._then(wait, lambda: self._typed(data, enter=enter))

    @overload
    async def key(self, *names: str, wait: None = None) -> int: ...
    @overload
    async def key(self, *names: str, wait: WaitConditions) -> WaitResult: ...
    async def key(self, *names: str, wait: WaitConditions | None = None) -> int | WaitResult:
        """As `Session.key`."""
        return await self._then(wait, lambda: self._send(key_steps(names)))

    @overload
    async def paste(self, data: str | bytes, *, wait: None = None) -> int: ...
    @overload
    async def paste(self, data: str | bytes, *, wait: WaitConditions) -> WaitResult: ...
    async def paste(
        self, data: str | bytes, *, wait: WaitConditions | None = None
    ) -> int | WaitResult:
        """As `Session.paste`."""
        return await self._then(wait, lambda: self._typed(data, paste=True))

    async def _typed(self, data: str | bytes, *, enter: bool = False, paste: bool = False) -> int:
        """As `Session._typed` (a large input in parts, by `Client.text` in a thread)."""
        if in_one_request(data):
            return await self._send(text_steps(data, enter=enter, paste=paste))
        try:
            sent = await self._thread(self.client.text, self.id, data, enter=enter, paste=paste)
        except RemoteError as exc:
            raise not_running(self.id, exc) from None
        return seq_of(sent)

    @overload
    async def send(
        self, *args: str, literal: bool = ..., enter: bool = ..., wait: None = None
    ) -> int: ...
    @overload
    async def send(
        self, *args: str, literal: bool = ..., enter: bool = ..., wait: WaitConditions
    ) -> WaitResult: ...
    async def send(
        self,
        *args: str,
        literal: bool = False,
        enter: bool = False,
        wait: WaitConditions | None = None,
    ) -> int | WaitResult:
        """As `Session.send`."""
        steps = send_steps(args, literal=literal, enter=enter)
        return await self._then(wait, lambda: self._send(steps))

    async def _then(
        self, wait: WaitConditions | None, send: Callable[[], Awaitable[int]]
    ) -> int | WaitResult:
        """As `Session._then`."""
        checked_wait(wait)
        seq = await send()
        return seq if wait is None else await self._wait(after_input(wait, seq))

    async def wait(
        self,
        *,
        text: str | None = None,
        regex: str | None = None,
        gone: str | None = None,
        stable: int | None = None,
        changed_since: int | None = None,
        after: int | None = None,
        input: bool = False,
        exit: bool = False,
        scrollback: bool = False,
        timeout: float = 30.0,
    ) -> WaitResult:
        """As `Session.wait`."""
        spec = wait_conditions(
            text=text,
            regex=regex,
            gone=gone,
            stable=stable,
            changed_since=changed_since,
            after=after,
            input=input,
            exit=exit,
            scrollback=scrollback,
            timeout=timeout,
        )
        return await self._wait(spec)

    async def _wait(self, spec: WaitConditions) -> WaitResult:
        # Asked of the worker even for `exit` (a thread must not sit in a long wait); a
        # session that ended is answered from its saved screen, the long way, at once.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + spec.timeout
        slots, queued = await self._wait_slot(spec)
        try:
            left = max(0.0, deadline - loop.time()) if queued else spec.timeout
            params: JSONObject = {**spec.params(), "timeout": left}  # (its words: "after 1s")
            result = await self._fast("wait", params, timeout=left + 5.0)
        except RemoteError as exc:
            if exc.code == "timeout":
                screen = await self._thread(self.client.get, self.id)
                raise SessionWaitTimeout(exc.message, screen) from None
            if exc.code != "exited":
                raise
            result = None
        finally:
            slots.release()
        if result is None:
            try:
                left = max(0.0, deadline - loop.time())
                result = await self._thread(
                    self.client.wait, self.id, timeout=left, **spec.conditions()
                )
            except WaitTimeout as exc:
                raise SessionWaitTimeout(exc.message, exc.screen) from None
            except SessionNotRunning as exc:  # its last screen a Screen, as a timeout's is
                raise SessionEnded(exc) from None
        return WaitResult.from_json(result)

    async def _wait_slot(self, spec: WaitConditions) -> tuple[asyncio.Semaphore, bool]:
        """One of the session's WAIT_SLOTS, taken within the wait's timeout (and whether it
        waited for it): a worker serves 64 connections, and waits that took them all left
        none for `text` and `get`."""
        slots = wait_slots.for_this_loop(str(self.client.home.socket_path(self.id)))
        if not slots.locked():
            await slots.acquire()  # (at once, even with a timeout of 0)
            return slots, False
        try:
            await asyncio.wait_for(slots.acquire(), spec.timeout)
        except asyncio.TimeoutError:
            screen = await self._thread(self.client.get, self.id)
            message = f"wait timed out after {spec.timeout:g}s (the session's waits queued)"
            raise SessionWaitTimeout(message, screen) from None
        return slots, True

    async def record(
        self, on: bool = True, *, input: bool = False, markers: bool = False
    ) -> JSONObject:
        """As `Session.record`."""
        return await self._thread(recorded, self.client, self.id, on, input=input, markers=markers)

    async def resize(self, cols: int, rows: int) -> None:
        try:
            await self._thread(self.client.resize, self.id, cols, rows)
        except RemoteError as exc:
            raise not_running(self.id, exc) from None

    async def signal(self, name: str, *, leader: bool = False) -> None:
        try:
            await self._thread(self.client.signal, self.id, name, leader=leader)
        except RemoteError as exc:
            raise not_running(self.id, exc) from None

    async def kill(self, *, grace: float = 2.0) -> JSONObject:
        """As `Session.kill`: an already ended session raises `SessionNotRunning`."""
        self.close()
        return await self._thread(self.client.kill, self.id, grace=grace)

    async def __aenter__(self) -> AsyncSession:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self.kill(grace=0.5)
        except GONE:
            pass
        except AgenttyError as failed:
            kill_failed(failed, exc)
        finally:
            self.close()  # (the connection `kill` used: to a worker that has ended)
