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

from agentty_core import protocol
from agentty_core.ipc.client import Connection
from tests.reliability.conftest import agentty, start

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
