"""The MCP server's way to the sessions: async to the worker's socket, one default per connection.

A `wait` is a request the worker answers when its condition holds; the MCP server keeps it
pending on an `AsyncConnection` (a file descriptor, no thread), so hundreds of waits leave
`get` answering at once, and a cancelled call (the client went away) closes its connection,
which drops the wait in the worker. What is rare or slow (start, kill, list, an ended
session's last screen, a dead worker's diagnosis) runs `Client`'s own code in a thread, so it
behaves exactly like the CLI.

The default session belongs to this connection (the one it started or attached last, with
its host); the home's active pointer is the CLI's, and nothing here moves it. `Sessions`
routes each call to a place: `Local` (this machine) or `remote.Remote` (a host over ssh),
which have the same async methods.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import ParamSpec, Protocol, TypeVar

import anyio.to_thread

from agentty_core.cli.mcp.errors import NoDefaultSession
from agentty_core.client import Client
from agentty_core.client_calls import WAIT_SLOTS, Patience, turned_away
from agentty_core.errors import RemoteError, SessionNotRunning, WaitTimeout, WorkerUnreachable
from agentty_core.ipc.aio_client import AsyncConnection
from agentty_core.protocol import JSONObject, wait_params
from agentty_core.state.records import Record, is_live
from agentty_core.waitspec import WaitConditions

P = ParamSpec("P")
T = TypeVar("T")

# A worker refuses a connection over its limit with "busy" before reading a request, so the
# request is safe to send again (BUSY_PATIENCE, the blocking client's own). Closed
# connections count until the worker has seen them close: right after many waits end (a
# client cancelling them), a new one may meet "busy".
LONG_TEXT = 16_384  # characters of input above which the blocking client sends it
_SAFE_TO_REPEAT = frozenset({"get", "wait"})  # requests that change nothing


async def in_thread(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """A blocking `Client` call off the event loop (start, kill, list: short and rare);
    a worker that is busy for a moment is asked again (see BUSY_PATIENCE)."""
    call = functools.partial(func, *args, **kwargs)
    waiting = Patience()
    while True:
        try:
            return await anyio.to_thread.run_sync(call)
        except (RemoteError, WorkerUnreachable) as exc:
            if not turned_away(exc) or (pause := waiting.next()) is None:
                raise  # (an input sent in part is never turned away: it would be typed twice)
        await asyncio.sleep(pause)


async def acquire_within(slots: asyncio.Semaphore, timeout: float) -> float | None:
    """Take a slot within `timeout` seconds (a free one even when it is 0): the time left
    of it then, all of it when none was queued for (the worker's words say "timed out
    after 1s", not "after 0.99998s"), or None when none came in time."""
    if not slots.locked():
        await slots.acquire()  # returns at once
        return timeout
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        await asyncio.wait_for(slots.acquire(), timeout)
    except asyncio.TimeoutError:
        return None
    return max(0.0, deadline - loop.time())


class Place(Protocol):
    """Where sessions live: this machine (`Local`) or a host (`remote.Remote`). `ref` is an
    id, a unique id prefix or a name there."""

    host: str | None

    async def resolve(self, ref: str) -> Record: ...
    async def require_running(self, ref: str) -> Record: ...
    async def get(self, ref: str, **params: object) -> JSONObject: ...
    async def act(self, ref: str, method: str, params: JSONObject) -> JSONObject: ...
    async def wait(self, ref: str, spec: WaitConditions) -> JSONObject: ...
    async def control(self, ref: str, method: str, params: JSONObject) -> JSONObject: ...
    async def start(
        self,
        argv: list[str] | None,
        *,
        shell: str | None,
        name: str | None,
        cwd: str | None,
        cols: int,
        rows: int,
        env: dict[str, str] | None,
        record: bool,
        held: bool = False,
    ) -> Record: ...
    async def sessions(self) -> list[Record]: ...
    async def kill(self, ref: str, *, grace: float) -> JSONObject: ...
    async def hold(self, ref: str) -> Callable[[], None]: ...
    async def remove(self, ref: str) -> None: ...
    async def record(self, ref: str, on: bool, *, input: bool) -> JSONObject: ...
    async def logs(self, ref: str) -> tuple[str, bytes]: ...
    def close(self) -> None: ...


class TypingLocks:
    """A lock per session, kept while a call holds it or waits for it, and no longer: the
    table holds only sessions being typed to. (A table pruned of the locks not `locked()`
    once full dropped one just released to a waiter not yet running, and two calls typed
    into one session at once.)"""

    def __init__(self) -> None:
        self._locks: dict[tuple[int, str], tuple[asyncio.Lock, int]] = {}  # lock, users

    def __len__(self) -> int:
        return len(self._locks)

    @contextlib.asynccontextmanager
    async def holding(self, key: tuple[int, str]) -> AsyncIterator[None]:
        lock, users = self._locks.get(key) or (asyncio.Lock(), 0)
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            users = self._locks[key][1] - 1
            if users:
                self._locks[key] = (lock, users)
            else:
                del self._locks[key]


class Sessions:
    """One MCP connection's sessions: its default (with its host) and a place per host."""

    def __init__(self, client: Client | None = None) -> None:
        self.local = Local(client)
        self.default: tuple[str | None, str] | None = None  # (host, session id)
        self._remote: dict[str, Place] = {}
        self._hosts: dict[str, str] = {}  # id of a session adopted on a host -> that host
        self._typing = TypingLocks()

    def place(self, host: str | None) -> Place:
        """The place `host` names (None: this machine); a host is set up on first use."""
        if host is None:
            return self.local
        place = self._remote.get(host)
        if place is None:
            from agentty_core.cli.mcp.remote import Remote

            place = self._remote[host] = Remote(host, self.local.client.home)
        return place

    def typing_into(self, place: Place, ref: str) -> AbstractAsyncContextManager[None]:
        """Held by a call's input steps (`send` is a request a step): calls made at once to
        one session type one after another, not in between each other's steps. A session
        here is known by its id, however the calls name it (a name, a prefix)."""
        if place is self.local:
            ref = str(self.local.client.resolve(ref)["id"])
        return self._typing.holding((id(place), ref))

    def target(self, session: str | None, host: str | None) -> tuple[Place, str]:
        """Where a call goes and the session it names. Without `session`: the default, on
        its own host. Without `host`: this machine, unless the session is one this
        connection started or attached on a host (by its id)."""
        if host is not None:
            place = self.place(host)  # a bad host is said first, whatever else is missing
        if session is None:
            if self.default is None or (host is not None and self.default[0] != host):
                raise NoDefaultSession(host)
            return self.place(self.default[0]), self.default[1]
        return (place if host is not None else self.place(self._hosts.get(session))), session

    def adopt(self, place: Place, session_id: str) -> None:
        """Make a session this connection's default (never the home's active one)."""
        self.default = (place.host, session_id)
        if place.host is not None:
            self._hosts[session_id] = place.host

    def is_default(self, place: Place, session_id: object) -> bool:
        return self.default == (place.host, session_id)

    def close(self) -> None:
        self.local.close()
        for place in self._remote.values():
            place.close()


class Local:
    """This machine's sessions: async to the workers' sockets, `Client` for the rest."""

    host: str | None = None

    def __init__(self, client: Client | None = None) -> None:
        self.client = client or Client()
        self._idle: dict[str, list[AsyncConnection]] = {}
        # (kept while a wait holds or queues on one, as `wait_slots` keeps its counts)
        self._wait_slots: weakref.WeakValueDictionary[str, asyncio.Semaphore] = (
            weakref.WeakValueDictionary()
        )

    async def resolve(self, ref: str) -> Record:
        return self.client.resolve(ref)  # a read of sessions.json: no thread needed

    async def require_running(self, ref: str) -> Record:
        return await in_thread(self.client.require_running, ref)

    async def start(
        self,
        argv: list[str] | None,
        *,
        shell: str | None,
        name: str | None,
        cwd: str | None,
        cols: int,
        rows: int,
        env: dict[str, str] | None,
        record: bool,
        held: bool = False,
    ) -> Record:
        return await in_thread(
            self.client.start,
            argv,
            shell=shell,
            name=name,
            cwd=cwd,
            cols=cols,
            rows=rows,
            env=env,
            activate=False,
            record={"input": False, "markers": False} if record else None,
            held=held,
        )

    async def sessions(self) -> list[Record]:
        return await in_thread(self.client.sessions, live_info=True)

    async def kill(self, ref: str, *, grace: float) -> JSONObject:
        sid = str(self.client.resolve(ref)["id"])
        return await in_thread(self.client.kill, sid, grace=grace)

    async def record(self, ref: str, on: bool, *, input: bool) -> JSONObject:
        sid = str(self.client.resolve(ref)["id"])
        return await in_thread(self.client.record, sid, on, input=input)

    async def hold(self, ref: str) -> Callable[[], None]:
        """Hold the session's life (`Client.hold`); the call that lets go."""
        held = await in_thread(self.client.hold, str(self.client.resolve(ref)["id"]))
        return held.close

    async def remove(self, ref: str) -> None:
        """Remove an ended session that a `run` held (as `run` does: `gc` keeps it)."""
        await in_thread(self.client.gc_session, str(self.client.resolve(ref)["id"]))

    async def logs(self, ref: str) -> tuple[str, bytes]:
        path = self.client.logs(str(self.client.resolve(ref)["id"]))
        try:
            return str(path), path.read_bytes()
        except FileNotFoundError:
            return str(path), b""

    async def control(self, ref: str, method: str, params: JSONObject) -> JSONObject:
        """resize, signal: for a running session only."""
        rec = await self.require_running(str(self.client.resolve(ref)["id"]))
        return await self.call(rec, method, params)

    # ------------------------------------------------------------ the socket

    async def _connection(self, rec: Record) -> tuple[AsyncConnection, bool]:
        """A kept connection to the record's worker if one is still good, else a new one."""
        sid = str(rec["id"])
        pid = rec.get("workerPid")
        expect = pid if isinstance(pid, int) else None
        kept = self._idle.get(sid, [])
        while kept:
            conn = kept.pop()
            if conn.peer_pid == expect and conn.reusable():
                return conn, True
            conn.close()
        path = str(self.client.home.socket_path(sid))
        return await AsyncConnection.open(path, expect_pid=expect), False

    def _keep(self, sid: str, conn: AsyncConnection) -> None:
        kept = self._idle.setdefault(sid, [])
        if len(kept) < 4:
            kept.append(conn)
        else:
            conn.close()

    async def call(
        self, rec: Record, method: str, params: JSONObject, timeout: float = 5.0
    ) -> JSONObject:
        """One request to a running session's worker. A worker that does not answer is
        diagnosed as the CLI does it (ended, lost, or really unreachable)."""
        sid = str(rec["id"])
        waiting, retried = Patience(), False
        while True:
            try:
                conn, reused = await self._connection(rec)
            except WorkerUnreachable:  # its socket gone (a call queued or retried after the
                await in_thread(self.client.require_running, sid)  # end): ended or lost
                raise
            try:
                result = await conn.call(method, params, timeout=timeout)
            except (RemoteError, WorkerUnreachable) as exc:
                lost, away = isinstance(exc, WorkerUnreachable), turned_away(exc)
                if not (lost or away):
                    self._keep(sid, conn)  # an error answer leaves the connection in step
                    raise
                conn.close()
                if reused and not retried and (away or method in _SAFE_TO_REPEAT):
                    retried = True  # a kept connection the worker closed just now: ask again
                    continue
                if away and (pause := waiting.next()) is not None:
                    await asyncio.sleep(pause)  # refused before the request was read
                    continue
                if lost:
                    await in_thread(self.client.require_running, sid)  # ended or lost: says so
                raise
            self._keep(sid, conn)
            return result

    def close(self) -> None:
        for kept in self._idle.values():
            for conn in kept:
                conn.close()
        self._idle.clear()

    # ------------------------------------------------------------ the tools' needs

    async def get(self, ref: str, **params: object) -> JSONObject:
        """The screen of a running session, or the last screen of an ended one."""
        rec = self.client.resolve(ref)
        if is_live(rec):
            try:
                return await self.call(rec, "get", dict(params))
            except (SessionNotRunning, RemoteError) as exc:
                if isinstance(exc, RemoteError) and exc.code != "exited":
                    raise
        return await in_thread(self.client.get, str(rec["id"]), **params)

    async def act(self, ref: str, method: str, params: JSONObject) -> JSONObject:
        """Input (text, key) for a running session: an ended one is `SessionNotRunning`.
        A long text goes through `Client.text`, which sends it in parts the worker takes."""
        rec = self.client.resolve(ref)
        data = params.get("data")
        if method == "text" and isinstance(data, str) and len(data) > LONG_TEXT:
            enter, paste = params.get("enter") is True, params.get("paste") is True
            sid = str(rec["id"])
            return await in_thread(self.client.text, sid, data, enter=enter, paste=paste)
        if not is_live(rec):
            rec = await in_thread(self.client.require_running, str(rec["id"]))  # raises
        try:
            return await self.call(rec, method, params)
        except RemoteError as exc:
            if exc.code == "exited":
                raise SessionNotRunning.from_refusal(str(rec["id"]), exc.message) from None
            raise

    def _slots(self, sid: str) -> asyncio.Semaphore:
        slots = self._wait_slots.get(sid)
        if slots is None:
            slots = self._wait_slots[sid] = asyncio.Semaphore(WAIT_SLOTS)
        return slots

    async def wait(self, ref: str, spec: WaitConditions) -> JSONObject:
        """Until a condition holds (the worker decides); WaitTimeout with the screen after
        `spec.timeout`. Holds a socket while pending, never a thread."""
        rec = self.client.resolve(ref)
        sid = str(rec["id"])
        conditions = spec.conditions()
        if not is_live(rec):
            return await in_thread(self.client.wait, sid, timeout=spec.timeout, **conditions)
        slots = self._slots(sid)
        remaining = await acquire_within(slots, spec.timeout)
        if remaining is None:
            raise WaitTimeout(
                f"wait timed out after {spec.timeout:g}s", await self.get(sid)
            ) from None
        try:
            params = wait_params(conditions, remaining)
            try:
                return await self.call(rec, "wait", params, timeout=remaining + 5.0)
            except RemoteError as exc:
                if exc.code == "timeout":
                    raise WaitTimeout(exc.message, await self.get(sid)) from None
                if exc.code != "exited":
                    raise
            except SessionNotRunning:
                pass
            # Ended while waiting: the CLI's answer (exit fires, text on the last screen).
            return await in_thread(self.client.wait_ended, sid, conditions)
        finally:
            slots.release()
