"""The worker's socket layer on its own: ordering, idleness, back-pressure, half-close."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path

from agentty_core.ipc.server import HIGH_WATER, Peer, Server

Handler = Callable[[Peer, bytes], None]


async def _serve(path: Path, on_request: Handler, body: Callable[[], Awaitable[None]]) -> None:
    server = Server(str(path), on_request, max_connections=8, idle_timeout=0.3)
    try:
        await body()
    finally:
        server.close()
        for peer in list(server.peers):
            peer.close()


async def _until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def _connect(path: Path) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_unix_connection(str(path), limit=1 << 24)


def test_idle_connections_close_but_waiting_and_subscribed_ones_stay(tmp_path: Path) -> None:
    held: list[Peer] = []

    def on_request(peer: Peer, line: bytes) -> None:
        if line.startswith(b"hold"):
            peer.busy = True  # answered "later": never, in this test
            held.append(peer)
        elif line.startswith(b"sub"):
            peer.subscribed = True
        else:
            peer.send(b"ok\n")

    async def body() -> None:
        # Each request written as soon as its connection is made: with another connect
        # awaited in between, a loop held up for the idle timeout (CI, loaded) rightly
        # closed the silent connection before its request came.
        idle_r, _idle_w = await _connect(tmp_path / "s")
        wait_r, wait_w = await _connect(tmp_path / "s")
        wait_w.write(b"hold\n")
        sub_r, sub_w = await _connect(tmp_path / "s")
        sub_w.write(b"sub\n")
        assert await asyncio.wait_for(idle_r.read(), 5) == b""  # closed for idleness
        await asyncio.sleep(0.3)  # another idle timeout's worth: the others must stay open
        assert not wait_r.at_eof() and not sub_r.at_eof()
        held[0].send(b"done\n")
        held[0].resume()  # idle again from now on
        assert await wait_r.readline() == b"done\n"
        assert await wait_r.read() == b""

    asyncio.run(_serve(tmp_path / "s", on_request, body))


def test_answers_far_ahead_of_the_reader_stop_further_reading(tmp_path: Path) -> None:
    big = b"x" * (HIGH_WATER // 2) + b"\n"
    taken: list[int] = []
    peers: list[Peer] = []

    def on_request(peer: Peer, line: bytes) -> None:
        taken.append(1)
        peers.append(peer)
        peer.send(big)

    async def body() -> None:
        # A plain socket the loop does not read: replies pile up until we read them.
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
        sock.connect(str(tmp_path / "s"))
        sock.sendall(b"get\n" * 20)
        await _until(lambda: bool(peers) and peers[0].unsent > HIGH_WATER)
        await asyncio.sleep(0.1)  # a moment in which it could take more lines, and must not
        assert len(taken) < 20  # stopped taking lines while answers pile up unread
        assert peers[0].unsent <= HIGH_WATER + len(big)
        sock.setblocking(False)
        received = b""
        while received.count(b"\n") < 20:
            try:
                received += sock.recv(1 << 20)
            except BlockingIOError:
                await asyncio.sleep(0.01)
        assert received == big * 20
        assert len(taken) == 20
        sock.close()

    asyncio.run(_serve(tmp_path / "s", on_request, body))


def test_a_client_that_half_closes_still_gets_every_answer_in_order(tmp_path: Path) -> None:
    loop_peers: list[Peer] = []

    def on_request(peer: Peer, line: bytes) -> None:
        if line == b"slow\n":
            peer.busy = True
            loop_peers.append(peer)
            asyncio.get_running_loop().call_later(0.1, answer_later, peer)
        else:
            peer.send(b"fast " + line)

    def answer_later(peer: Peer) -> None:
        peer.send(b"slow done\n")
        peer.resume()

    async def body() -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(str(tmp_path / "s"))
        sock.sendall(b"a\nslow\nb\nunterminated")
        sock.shutdown(socket.SHUT_WR)
        sock.setblocking(False)
        reader, writer = await asyncio.open_unix_connection(sock=sock)
        lines = [await reader.readline() for _ in range(3)]
        assert lines == [b"fast a\n", b"slow done\n", b"fast b\n"]
        assert await reader.read() == b""  # then closed; the unterminated rest is dropped
        writer.close()

    asyncio.run(_serve(tmp_path / "s", on_request, body))


def test_idleness_counts_from_the_last_request(tmp_path: Path) -> None:
    """A connection in use stays open however long it lives; once quiet for the idle
    timeout it closes."""

    def on_request(peer: Peer, line: bytes) -> None:
        peer.send(b"ok\n")

    async def body() -> None:
        reader, writer = await _connect(tmp_path / "s")
        loop = asyncio.get_running_loop()
        end = loop.time() + 1.0  # more than three idle timeouts
        while True:
            writer.write(b"ping\n")
            assert await asyncio.wait_for(reader.readline(), 5) == b"ok\n"
            answered = loop.time()
            if answered > end:
                break
            await asyncio.sleep(0.1)
        assert await asyncio.wait_for(reader.read(), 5) == b""
        assert loop.time() - answered >= 0.25  # the idle timeout is 0.3 s

    asyncio.run(_serve(tmp_path / "s", on_request, body))
