"""The MCP tools' sessions on another host: the same calls as `backend.Local`, over ssh.

Talking to a running session (get, input, wait, resize, signal) goes through
`agentty relay` children read on the event loop (`remote/aio_relay.py`): a pending wait holds
a relay (two pipes and an ssh channel), never a thread, and is answered by the remote worker
the moment its screen matches. Relays to a host are bounded (sshd allows 10 channels per
connection by default); waits get all but one of them, so `get` and input always find room.
A `run` holds its session through a relay of its own, beside them (MAX_HOLDS at once).
What is rare (start, list, kill, record, logs, an ended session's last screen) runs
`RemoteClient`'s command line (`ssh HOST agentty ... --json`) in a worker thread.

A failure of the link is a `TransportError` (MCP code `transport_error`) with the CLI's line,
as fast as ssh says it (BatchMode, a bounded ConnectTimeout): refused or unknown hosts in
milliseconds. A host string that is not a host (`-oProxyCommand=...`) is `invalid_host`
before anything runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from agentty_core.cli.mcp.backend import acquire_within, in_thread
from agentty_core.cli.mcp.errors import CodedUsageError
from agentty_core.errors import (
    RemoteError,
    SessionNotRunning,
    UsageError,
    WaitTimeout,
    WorkerUnreachable,
)
from agentty_core.paths import Home
from agentty_core.protocol import JSONObject, wait_params
from agentty_core.remote.aio_relay import MAX_CHANNELS, AsyncRelay, RelayPool
from agentty_core.remote.client import RemoteClient
from agentty_core.state.records import Record
from agentty_core.waitspec import WaitConditions

_SAFE_TO_REPEAT = frozenset({"get", "wait"})  # requests that change nothing
# Relays holding a run's session, beside the pool's MAX_CHANNELS (of sshd's 10 sessions a
# connection: what is left is for the command line, `start` and `kill`).
MAX_HOLDS = 2


class Remote:
    """One host's sessions, for one MCP connection."""

    def __init__(self, host: str, home: Home) -> None:
        try:
            self.client = RemoteClient(host, home=home)
        except UsageError as exc:  # not a host: a leading '-', a bad hosts.toml entry
            raise CodedUsageError(str(exc), "invalid_host") from None
        self.host: str | None = host
        self.pool = RelayPool(self.client.host, home.root)
        self._wait_slots = asyncio.Semaphore(MAX_CHANNELS - 1)
        self._holds = asyncio.Semaphore(MAX_HOLDS)

    # ------------------------------------------------------------ through a relay

    async def call(
        self, ref: str, method: str, params: JSONObject, timeout: float = 5.0
    ) -> JSONObject:
        """One request to the session's worker through a relay (kept for the next call)."""
        retried = False
        while True:
            relay, reused = await self.pool.acquire(ref)
            try:
                return await relay.call(method, params, timeout=timeout)
            except WorkerUnreachable as exc:
                # A kept relay that ended while idle (the master restarted, the worker
                # closed it): a request that changes nothing is asked once more, afresh.
                if reused and not retried and method in _SAFE_TO_REPEAT and exc.reason == "closed":
                    retried = True
                    continue
                raise
            finally:
                self.pool.release(relay)

    async def get(self, ref: str, **params: object) -> JSONObject:
        """The screen of a running session, or (by the command line) an ended one's last."""
        try:
            return await self.call(ref, "get", dict(params))
        except (SessionNotRunning, WorkerUnreachable, RemoteError) as exc:
            if isinstance(exc, RemoteError) and exc.code != "exited":
                raise
        words = ["get", "-s", ref]
        words += ["--scrollback"] if params.get("scrollback") else []
        words += ["--ansi"] if params.get("ansi") else []
        lines = params.get("lines")
        words += ["--lines", str(lines)] if isinstance(lines, int) else []
        return await in_thread(self.client.cli, words)

    async def act(self, ref: str, method: str, params: JSONObject) -> JSONObject:
        try:
            return await self.call(ref, method, params, timeout=30.0)
        except RemoteError as exc:
            if exc.code == "exited":
                raise SessionNotRunning.from_refusal(ref, exc.message) from None
            raise

    async def control(self, ref: str, method: str, params: JSONObject) -> JSONObject:
        return await self.act(ref, method, params)  # the relay refuses an ended session

    async def wait(self, ref: str, spec: WaitConditions) -> JSONObject:
        """Answered by the remote worker the moment a condition holds; holds a relay while
        pending (at most MAX_CHANNELS - 1 at once per host; more queue, their timeout
        counting from the call)."""
        conditions = spec.conditions()
        remaining = await acquire_within(self._wait_slots, spec.timeout)
        if remaining is None:
            raise WaitTimeout(
                f"wait timed out after {spec.timeout:g}s", await self.get(ref)
            ) from None
        try:
            params = wait_params(conditions, remaining)
            try:
                return await self.call(ref, "wait", params, timeout=remaining + 5.0)
            except RemoteError as exc:
                if exc.code == "timeout":
                    raise WaitTimeout(exc.message, await self.get(ref)) from None
                if exc.code != "exited":
                    raise
            except SessionNotRunning:
                pass
            except WorkerUnreachable:
                # Its worker closed the relay's connection unanswered: it was going away
                # (the session ended as the wait came: a run's wait for a quick exit, six
                # at once, in CI). Said as an ended session's wait, as here (`Local.call`).
                if not await self._ended(ref):
                    raise
        finally:
            self._wait_slots.release()
        # Ended while waiting: the remote CLI's answer (exit fires, text on the last screen).
        ended: JSONObject = {k: v for k, v in conditions.items() if v not in (None, False)}
        return await in_thread(self.client.cli_wait, ref, ended, 0.0)

    async def _ended(self, ref: str) -> bool:
        """Whether the session has ended (its record says so there)."""
        try:
            await self.require_running(ref)
        except SessionNotRunning:
            return True
        return False

    # ------------------------------------------------------------ the command line

    async def resolve(self, ref: str) -> Record:
        return await in_thread(self.client.resolve, ref)

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
        held: bool = False,  # (held after, through a relay: `hold`)
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
            record={"input": False, "markers": False} if record else None,
        )

    async def sessions(self) -> list[Record]:
        return await in_thread(self.client.sessions)

    async def kill(self, ref: str, *, grace: float) -> JSONObject:
        self.pool.forget(ref)
        return await in_thread(self.client.kill, ref, grace=grace)

    async def hold(self, ref: str) -> Callable[[], None]:
        """Hold the session's life through a relay of its own, outside the pool (a run holds
        it for as long as it runs: taken from the pool, six runs left no relay for their
        own waits, nor for a `get`): the server's end, or the link's, ends the session
        there. Beyond MAX_HOLDS runs at once on a host, a run goes unheld."""
        if self._holds.locked():
            return lambda: None
        await self._holds.acquire()
        relay: AsyncRelay | None = None
        try:
            relay = await AsyncRelay.open(self.client.host, ref, self.pool.home_root)
            await relay.call("hold", {})
        except BaseException:
            if relay is not None:
                relay.close()
            self._holds.release()
            raise
        held = relay

        def let_go() -> None:
            held.close()
            self._holds.release()

        return let_go

    async def remove(self, ref: str) -> None:
        await in_thread(self.client.gc_one, ref)

    async def record(self, ref: str, on: bool, *, input: bool) -> JSONObject:
        words = ["record", "-s", ref, "on" if on else "off"] + (["--input"] if input else [])
        return await in_thread(self.client.cli, words)

    async def logs(self, ref: str) -> tuple[str, bytes]:
        answer = await in_thread(self.client.cli, ["logs", "-s", ref])
        log = answer.get("log")
        return str(answer.get("path", "")), str(log if log is not None else "").encode()

    def close(self) -> None:
        self.pool.close()
        self.client.close()
