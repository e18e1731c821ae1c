"""`ipc.client.not_done`: which failures prove the worker did not act on a request, against
a socket of the test's own (a listener that never accepts stands for a stopped worker). The
dashboard's sender asks again only then: each of these was a held input dropped."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentty_core import protocol
from agentty_core.errors import WorkerUnreachable
from agentty_core.ipc.client import Connection, Late, not_done
from tests.helpers.sockets import fill_backlog


@pytest.fixture
def listener(agentty_home: Path) -> Iterator[tuple[str, socket.socket]]:
    """A listening socket nobody accepts on (a stopped worker's), backlog 1."""
    path = str(agentty_home / "w.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    sock.listen(1)
    yield path, sock
    sock.close()


def test_a_late_refusal_is_not_done(listener: tuple[str, socket.socket]) -> None:
    """The worker reads a request in the last 0.1 s before its `until` (resumed then) and
    refuses it, `late`: that answer became a plain timeout, asked whether the request was
    still queued: it was read, so "maybe done", and the held input was dropped."""
    path, sock = listener

    def refuse_late() -> None:
        conn, _ = sock.accept()
        with conn, conn.makefile("rb") as lines:
            lines.readline()
            conn.sendall(protocol.error("late", "the caller stopped waiting: not done"))

    worker = threading.Thread(target=refuse_late)
    worker.start()
    with Connection(path, timeout=30) as conn, pytest.raises(Late) as caught:
        conn.call("text", {"data": "x"})
    worker.join()
    assert not_done(caught.value) and caught.value.reason == "timeout"
    assert not caught.value.unread  # (it was read: `Late` says what became of it)


def test_a_request_line_not_sent_whole_is_not_done(listener: tuple[str, socket.socket]) -> None:
    """A paste larger than the socket's buffer, to a worker that reads nothing: sendall ran
    out of time before the line's end (SO_SNDTIMEO), outside what asked whether the request
    was read, and the paste was dropped. A line without its newline is never a request."""
    path, _ = listener
    with Connection(path, timeout=0.3) as conn, pytest.raises(WorkerUnreachable) as caught:
        conn.call("text", {"data": "x" * 900_000})  # (one line, far over a socket buffer)
    assert caught.value.reason == "timeout" and caught.value.unread and not_done(caught.value)


def test_a_connect_to_a_full_backlog_is_not_done(listener: tuple[str, socket.socket]) -> None:
    """A stopped worker's backlog fills with the connections given up on it; then a connect
    fails at once (EAGAIN, "connect_failed"): nothing was sent, as for a missing socket."""
    path, _ = listener
    fillers = fill_backlog(path)
    try:
        with pytest.raises(WorkerUnreachable) as caught:
            Connection(path, timeout=1.0)
    finally:
        for filler in fillers:
            filler.close()
    assert caught.value.reason == "connect_failed" and not_done(caught.value)
    with pytest.raises(WorkerUnreachable) as missing:
        Connection(path + ".gone", timeout=1.0)
    assert missing.value.reason == "socket_missing" and not_done(missing.value)


def test_a_request_read_and_not_answered_may_have_been_done(
    listener: tuple[str, socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the worker read and did not answer in time may have been typed: not asked
    again (the worker here reads the line, then says nothing)."""
    path, sock = listener
    read = threading.Event()
    done = threading.Event()

    def read_and_say_nothing() -> None:
        conn, _ = sock.accept()
        with conn, conn.makefile("rb") as lines:
            lines.readline()
            read.set()
            done.wait(30)

    real_read = Connection.read_message

    def once_read(self: Connection, deadline: float | None = None) -> protocol.JSONObject:
        read.wait(30)  # (the answer's wait runs out after the worker took the line)
        return real_read(self, deadline)

    monkeypatch.setattr(Connection, "read_message", once_read)
    worker = threading.Thread(target=read_and_say_nothing)
    worker.start()
    try:
        with Connection(path, timeout=0.2) as conn, pytest.raises(WorkerUnreachable) as caught:
            conn.call("text", {"data": "x"})
    finally:
        done.set()
        worker.join()
    assert caught.value.reason == "timeout" and not not_done(caught.value)
