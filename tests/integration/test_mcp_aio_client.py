"""The asyncio socket client the MCP server uses: same framing, same identity checks."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from agentty_core.errors import RemoteError, WorkerUnreachable
from agentty_core.ipc.aio_client import AsyncConnection
from tests.helpers.aio import awaits_its_answer, until
from tests.helpers.cli import agentty, agentty_json


def _socket(rec: dict[str, object]) -> str:
    return str(Path(os.environ["AGENTTY_HOME"]) / "sockets" / f"{rec['id']}.sock")


async def test_requests_in_order_and_concurrent_waits_on_their_own_connections() -> None:
    rec = agentty_json("start", "--", "cat")
    path, pid = _socket(rec), int(str(rec["workerPid"]))
    conn = await AsyncConnection.open(path, expect_pid=pid)
    waiters = [await AsyncConnection.open(path, expect_pid=pid) for _ in range(3)]
    try:
        assert (await conn.call("ping"))["pid"] == pid
        pending = [
            asyncio.ensure_future(w.call("wait", {"text": f"w{i}", "timeout": 20}, timeout=30))
            for i, w in enumerate(waiters)
        ]
        await conn.call("text", {"data": "w0 w1 w2\r"})
        done = await asyncio.gather(*pending)
        assert [d["fired"] for d in done] == ["text"] * 3
        with pytest.raises(RemoteError) as bad:
            await conn.call("key", {"keys": ["Nope"]})
        assert bad.value.code == "invalid_key"
        assert conn.reusable()  # an error answer leaves the connection in step
        assert (await conn.call("ping"))["pid"] == pid
    finally:
        conn.close()
        for w in waiters:
            w.close()
        agentty("kill", "--session", str(rec["id"]))


async def test_a_socket_served_by_another_pid_is_refused() -> None:
    rec = agentty_json("start", "--", "cat")
    try:
        with pytest.raises(WorkerUnreachable, match="unexpected process"):
            await AsyncConnection.open(_socket(rec), expect_pid=os.getpid())
        with pytest.raises(WorkerUnreachable, match="missing"):
            await AsyncConnection.open(_socket(rec) + ".nope")
    finally:
        agentty("kill", "--session", str(rec["id"]))


async def test_a_cancelled_wait_closes_its_connection() -> None:
    rec = agentty_json("start", "--", "cat")
    conn = await AsyncConnection.open(_socket(rec), expect_pid=int(str(rec["workerPid"])))
    try:
        task = asyncio.ensure_future(conn.call("wait", {"text": "never", "timeout": 600}, 700))
        await asyncio.sleep(0)  # let it send
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not conn.reusable()
    finally:
        conn.close()
        agentty("kill", "--session", str(rec["id"]))


async def test_a_request_over_the_line_limit_is_refused_before_it_is_sent() -> None:
    # The worker would refuse it and close while it is still being sent, and the sender
    # would see only a broken pipe (it did, now and then): the client says why instead.
    rec = agentty_json("start", "--", "cat")
    conn = await AsyncConnection.open(_socket(rec), expect_pid=int(str(rec["workerPid"])))
    try:
        with pytest.raises(RemoteError) as refused:
            await conn.call("text", {"data": "x" * 1_200_000})
        assert refused.value.code == "too_large"
        assert (await conn.call("ping"))["pid"] == rec["workerPid"]  # nothing was sent
    finally:
        conn.close()
        agentty("kill", "--session", str(rec["id"]))


async def test_a_newcomer_to_a_worker_with_every_connection_taken_may_ask_again() -> None:
    """The worker writes "busy" and closes before it reads the request: a request sent
    after that close failed as "Connection lost", read as an unreachable worker, and the
    MCP server failed waits it should have asked again (an attack round: 2 of 300
    concurrent waits on a loaded machine). Such a failed send is "send_failed" now, and
    the MCP backend asks again on it while the worker is busy, as on "busy"."""
    from agentty_core.cli.mcp.backend import Local

    rec = agentty_json("start", "--", "cat")
    path, pid = _socket(rec), int(str(rec["workerPid"]))
    holders, pending = await _every_connection_taken(rec, wait=1.5)
    local = Local()
    try:
        await until(lambda: all(awaits_its_answer(task) for task in pending))  # all taken
        refused: list[str] = []
        for _ in range(30):
            conn = await AsyncConnection.open(path, expect_pid=pid)
            try:
                await conn.call("wait", {"text": "never", "timeout": 1}, timeout=5)
            except RemoteError as exc:
                refused.append(exc.code)
            except WorkerUnreachable as exc:
                refused.append(exc.reason)
            finally:
                conn.close()
        assert set(refused) <= {"busy", "send_failed"}, refused
        record = local.client.resolve(str(rec["id"]))
        asked = [local.call(record, "wait", {"text": "never", "timeout": 0.2}) for _ in range(20)]
        outcomes = await asyncio.gather(*asked, return_exceptions=True)
        codes = [getattr(o, "code", repr(o)) for o in outcomes]
        assert codes == ["timeout"] * 20, codes  # asked again once the holders' waits ended
    finally:
        local.close()
        for task in pending:
            task.cancel()
        for h in holders:
            h.close()
        agentty("kill", "--session", str(rec["id"]))


async def test_an_async_session_turned_away_as_busy_asks_again_without_holding_a_thread() -> None:
    """A wait turned away ("busy": every connection taken by other clients) went the long
    way, a thread of the default executor held for the wait's whole timeout: with a few
    of them, an unrelated `to_thread` call waited 13 s (a review). It asks again in the
    loop, and the executor stays free."""
    from agentty_core import AsyncSession
    from agentty_core.errors import WaitTimeout

    rec = agentty_json("start", "--", "cat")
    holders, pending = await _every_connection_taken(rec, wait=60)
    session = AsyncSession(str(rec["id"]))
    try:
        await until(lambda: all(awaits_its_answer(task) for task in pending))  # all taken
        waits = [asyncio.ensure_future(session.wait(text="x", timeout=5)) for _ in range(40)]
        await asyncio.sleep(0.3)
        loop = asyncio.get_running_loop()
        began = loop.time()
        await asyncio.wait_for(asyncio.to_thread(lambda: 1), 5)
        assert loop.time() - began < 2  # the executor's threads are not held by the waits
        for task in pending:  # the holders let go: the session's waits get in
            task.cancel()
        for h in holders:
            h.close()
        outcomes = await asyncio.gather(*waits, return_exceptions=True)
        assert all(isinstance(o, WaitTimeout) or o.fired for o in outcomes), outcomes  # type: ignore[union-attr]
    finally:
        for task in pending:
            task.cancel()
        for h in holders:
            h.close()
        session.close()
        agentty("kill", "--session", str(rec["id"]))


async def _every_connection_taken(
    rec: dict[str, object], *, wait: float
) -> tuple[list[AsyncConnection], list[asyncio.Task[dict[str, object]]]]:
    """The worker's every connection held by a wait pending for `wait` seconds."""
    from agentty_core.worker.core import MAX_CONNECTIONS

    path, pid = _socket(rec), int(str(rec["workerPid"]))
    holders = [await AsyncConnection.open(path, expect_pid=pid) for _ in range(MAX_CONNECTIONS)]
    pending = [
        asyncio.create_task(h.call("wait", {"text": "never", "timeout": wait}, timeout=wait + 10))
        for h in holders
    ]
    return holders, pending
