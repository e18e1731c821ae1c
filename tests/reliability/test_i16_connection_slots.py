"""Issue 16, item 4: connection slots held by clients that say nothing, or a byte at a time,
are reclaimed, so a new client is always served while any slot is merely held."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path

from agentty_core import protocol
from agentty_core.ipc.server import Peer, Server
from tests.helpers.aio import until

SLOTS = 4


def _answer(peer: Peer, line: bytes) -> None:
    if line.startswith(b"hold"):
        peer.busy = True  # answered "later": never, in these tests
    else:
        peer.send(protocol.ok({"pong": True}))


def _serve(path: Path, body: Callable[[Path, Server], Awaitable[None]], **options: float) -> None:
    async def main() -> None:
        server = Server(str(path), _answer, max_connections=SLOTS, idle_timeout=600.0, **options)
        try:
            await body(path, server)
        finally:
            server.close()
            for peer in list(server.peers):
                peer.close()

    asyncio.run(main())


async def _ping(path: Path) -> dict[str, object]:
    """One request on a new connection; its answer (a refusal may come before it is sent)."""
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.setblocking(False)
        await loop.sock_connect(sock, str(path))
        with contextlib.suppress(OSError):
            await loop.sock_sendall(sock, b'{"method": "ping", "params": {}}\n')
        data = b""
        while not data.endswith(b"\n"):
            chunk = await asyncio.wait_for(loop.sock_recv(sock, 1 << 16), 5)
            assert chunk, data
            data += chunk
    answer = json.loads(data)
    assert isinstance(answer, dict)
    return answer


def test_a_new_client_evicts_the_longest_idle_connection(tmp_path: Path) -> None:
    async def body(path: Path, server: Server) -> None:
        hogs = [await asyncio.open_unix_connection(str(path)) for _ in range(SLOTS)]
        hogs[1][1].write(b'{"method": "pi')  # half a request, never finished
        await hogs[1][1].drain()
        await asyncio.sleep(0.25)  # past the grace of a client still sending its request
        for _ in range(3):  # each new client is served, every time
            assert (await _ping(path))["ok"] is True
        # The first idle one went first; it was told why.
        first = await asyncio.wait_for(hogs[0][0].read(), 5)
        assert b'"evicted"' in first
        for _reader, writer in hogs:
            writer.close()

    _serve(tmp_path / "s", body, fresh_grace=0.2)


def test_a_client_still_sending_its_first_request_is_not_evicted(tmp_path: Path) -> None:
    """Every slot but one waits for an answer and the last is a client that has just
    connected: a newcomer is told "busy" (clients ask again), not served by evicting the
    client about to ask, whose request would go unread."""

    async def body(path: Path, server: Server) -> None:
        waiting = [await asyncio.open_unix_connection(str(path)) for _ in range(SLOTS - 1)]
        for _reader, writer in waiting:
            writer.write(b"hold\n")
            await writer.drain()
        reader, writer = await asyncio.open_unix_connection(str(path))  # about to ask
        await until(lambda: len(server.peers) == SLOTS)
        answer = await _ping(path)
        assert answer["ok"] is False and answer["error"]["code"] == "busy"  # type: ignore[index]
        writer.write(b'{"method": "ping", "params": {}}\n')
        await writer.drain()
        assert json.loads(await asyncio.wait_for(reader.readline(), 5))["ok"] is True
        # Once it has asked, it is idle like any other: the next newcomer takes its slot.
        assert (await _ping(path))["ok"] is True
        assert b'"evicted"' in await asyncio.wait_for(reader.read(), 5)
        for _reader, waiter in [*waiting, (reader, writer)]:
            waiter.close()

    _serve(tmp_path / "s", body)


def test_slots_waiting_for_an_answer_are_not_evicted(tmp_path: Path) -> None:
    async def body(path: Path, server: Server) -> None:
        waiting = [await asyncio.open_unix_connection(str(path)) for _ in range(SLOTS)]
        for _reader, writer in waiting:
            writer.write(b"hold\n")
            await writer.drain()
        await until(lambda: len(server.peers) == SLOTS and all(p.busy for p in server.peers))
        answer = await _ping(path)
        assert answer["ok"] is False and answer["error"]["code"] == "busy"  # type: ignore[index]
        for reader, _writer in waiting:
            assert not reader.at_eof()
        for _reader, writer in waiting:
            writer.close()

    _serve(tmp_path / "s", body)


def test_a_request_trickling_in_is_cut_off_at_its_deadline(tmp_path: Path) -> None:
    async def body(path: Path, server: Server) -> None:
        loop = asyncio.get_running_loop()
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.setblocking(False)
            await loop.sock_connect(sock, str(path))
            for byte in b'{"method": "ping"':
                try:
                    await loop.sock_sendall(sock, bytes([byte]))
                except OSError:
                    break  # cut off
                await asyncio.sleep(0.05)  # the hostile client's pace: the fault itself
            data = b""
            while chunk := await asyncio.wait_for(loop.sock_recv(sock, 1 << 16), 5):
                data += chunk
        assert b'"request_timeout"' in data and data.count(b"\n") == 1, data
        # A client that completes its request in time is answered as usual.
        assert (await _ping(path))["ok"] is True

    _serve(tmp_path / "s", body, request_deadline=0.3)
