"""Clients that leave with a wait pending: their connections stop counting at once.

A worker serves 64 connections. It stopped reading a connection while answering it later (a
pending wait), so a client that closed then went unseen until the wait ended, up to a day: an
MCP client cancelling its waits left the worker answering "too many connections" to every
caller, the CLI's `kill` included. A client that only shuts its sending half still gets its
answer."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from agentty_core import protocol
from agentty_core.errors import RemoteError
from agentty_core.ipc.client import Connection
from tests.reliability.conftest import agentty, agentty_json, start

LIMIT = 64  # worker.core.MAX_CONNECTIONS


def _path(session_id: str) -> str:
    return str(Path(os.environ["AGENTTY_HOME"]) / "sockets" / f"{session_id}.sock")


def _raw_wait(path: str, text: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    sock.sendall(protocol.request("wait", {"text": text, "timeout": 600}))
    return sock


def test_closed_clients_with_waits_pending_free_their_connections() -> None:
    rec = start("--", "cat")
    sid, path = str(rec["id"]), _path(str(rec["id"]))
    try:
        for _round in range(3):  # three times the limit, closed as they go
            socks = [_raw_wait(path, "never") for _ in range(LIMIT - 4)]
            with Connection(path) as probe:  # they were all accepted and are pending
                assert probe.call("ping")["pong"] is True
            for sock in socks:
                sock.close()
        with Connection(path) as conn:
            assert conn.call("ping")["pong"] is True  # before the fix: "too many connections"
    finally:
        agentty("kill", "--session", sid)


def test_a_half_closed_client_still_gets_its_answer() -> None:
    rec = start("--", "cat")
    sid, path = str(rec["id"]), _path(str(rec["id"]))
    try:
        sock = _raw_wait(path, "half-closed")
        sock.shutdown(socket.SHUT_WR)  # no more requests; the answer is still wanted
        sock.settimeout(30)
        with Connection(path) as conn:
            conn.call("text", {"data": "half-closed\r"})
        answer = json.loads(sock.makefile("rb").readline())
        assert answer["ok"] is True and answer["result"]["fired"] == "text"
        sock.close()
    finally:
        agentty("kill", "--session", sid)


def test_a_caller_told_busy_asks_again_until_a_connection_is_free() -> None:
    """Every connection of the worker waits for an answer: a caller is told "busy" before
    its request is read, so asking again is safe; the CLI failed at once ("too many
    connections"), now it asks again for a while and types once a slot is free."""
    import subprocess
    import time

    from tests.helpers.cli import AGENTTY

    rec = start("--", "cat")
    sid, path = str(rec["id"]), _path(str(rec["id"]))
    try:
        socks = [_raw_wait(path, "never") for _ in range(LIMIT)]
        deadline = time.monotonic() + 10
        while True:  # all of them taken in: a probe is refused
            with Connection(path) as probe:
                try:
                    probe.call("ping")
                except RemoteError as exc:  # the refusal it waits for
                    if exc.code == "busy":
                        break
            assert time.monotonic() < deadline, "the waits never filled the worker"
        typing = subprocess.Popen(
            [AGENTTY, "text", "--session", sid, "typed-once"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(0.5)
        socks.pop().close()  # a slot comes free
        _, err = typing.communicate(timeout=30)
        assert typing.returncode == 0, err
        for sock in socks:
            sock.close()
        with Connection(path) as conn:
            lines = conn.call("get")["lines"]
            assert isinstance(lines, list) and lines[0] == "typed-once"
    finally:
        agentty("kill", "--session", sid)


def test_calls_with_a_time_of_their_own_do_not_wait_for_a_busy_worker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`status` asks every worker within a second, and `kill` ends a session whose worker
    does not answer its ping from outside at once: neither asks a busy worker again (each
    took 3 s more, the patience other calls have, with every connection waiting)."""
    import time

    from agentty_core import client_calls
    from agentty_core.client import Client

    class NoPause:  # `client_calls.time`: asking again pauses first
        monotonic = staticmethod(time.monotonic)

        @staticmethod
        def sleep(seconds: float) -> None:
            raise AssertionError("a busy worker was asked again")

    rec = start("--", "cat")
    sid, path = str(rec["id"]), _path(str(rec["id"]))
    socks = [_raw_wait(path, "never") for _ in range(LIMIT)]
    try:
        with monkeypatch.context() as patched:
            patched.setattr(client_calls, "time", NoPause)
            client = Client()
            assert [r["status"] for r in client.sessions(live_info=True)] == ["running"]
            client.kill(sid)
    finally:
        for sock in socks:
            sock.close()
    assert agentty_json("status")["sessions"][0]["status"] == "exited"
