"""Talking to a worker that does not answer as expected: recovery picked by the error's
reason (never its text), and a worker of another protocol version named as such."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentty_core import protocol
from agentty_core.errors import ProtocolMismatch
from agentty_core.ipc import client as ipc_client
from agentty_core.paths import Home
from agentty_core.proc import identity
from tests.helpers.cli import agentty, agentty_json, wait_until


def _stale_socket(path: Path) -> None:
    """A socket file nobody listens on (connecting to it is refused)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.close()


@pytest.mark.parametrize("word", ["plain", "missing"])
def test_recovery_depends_on_the_reason_not_the_home_path(
    agentty_home: Path, monkeypatch: pytest.MonkeyPatch, word: str
) -> None:
    """Issue 16 #21: a home whose path contains "missing" made every connect failure look
    like a deleted socket (the client matched the word in the message): a refused socket
    then sent the worker SIGUSR1 in one home and not in another."""
    home = agentty_home / word
    home.mkdir(mode=0o700)
    monkeypatch.setenv("AGENTTY_HOME", str(home))
    rec = agentty_json("start", "--", "sh", "-c", "echo still-here; exec sleep 1000000")
    try:
        agentty("wait", "--session", rec["id"], "--text", "still-here", check=True)
        sock = Path(rec["socket"])
        sock.unlink()
        _stale_socket(sock)  # refused: not the worker's, not missing
        got = agentty("get", "--session", rec["id"])
        assert got.returncode == 1 and "nothing listens on" in got.stderr, got.stderr
        assert stat.S_ISSOCK(os.lstat(sock).st_mode)
        assert "still-here" not in got.stdout
        sock.unlink()  # missing: the worker is asked to bind it again
        got = agentty("get", "--session", rec["id"])
        assert got.returncode == 0 and "still-here" in got.stdout, got.stderr
    finally:
        agentty("kill", "--session", rec["id"], "--timeout", "0.5")


@contextlib.contextmanager
def _fake_worker(path: Path, version: int) -> Iterator[list[bytes]]:
    """A Unix socket server answering every request line with an ok of `version`."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(8)
    heard: list[bytes] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                buf = b""
                while b"\n" not in buf and (chunk := conn.recv(4096)):
                    buf += chunk
                heard.append(buf)
                answer = {"v": version, "ok": True, "result": {"lines": ["FAKE"], "pong": True}}
                with contextlib.suppress(OSError):
                    conn.sendall(json.dumps(answer).encode() + b"\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield heard
    finally:
        stop.set()
        server.shutdown(socket.SHUT_RDWR)
        server.close()
        thread.join(5)


def test_client_names_both_versions(tmp_path: Path) -> None:
    path = tmp_path / "w.sock"
    with _fake_worker(path, 2), pytest.raises(ProtocolMismatch) as caught:
        ipc_client.call(str(path), "ping", timeout=5)
    message = str(caught.value)
    assert "protocol version 2" in message and f"version {protocol.PROTOCOL_VERSION}" in message


def test_cli_talking_to_a_worker_of_another_version(agentty_home: Path) -> None:
    """Start a session, upgrade agentty, talk to it: one line naming both versions, never
    the other version's answer read as ours (here: `get` printing its lines)."""
    home = Home.resolve()
    session_id = "0000abcd"
    home.ensure_socket_dir()
    me = os.getpid()  # the fake worker is a thread of this test: its pid is ours
    doc: dict[str, Any] = {
        "schema_version": 1,
        "sessions": [
            {
                "id": session_id,
                "status": "running",
                "argv": ["fake"],
                "command": "fake",
                "workerPid": me,
                "workerStart": identity.start_token(me),
                "startedAt": "2026-01-01T00:00:00.000+00:00",
            }
        ],
    }
    home.state_file.write_text(json.dumps(doc))
    home.state_file.chmod(0o600)
    try:
        with _fake_worker(home.socket_path(session_id), 2):
            for args in (["get"], ["text", "hi"], ["key", "Enter"], ["text", "--enter", "x"]):
                got = agentty(args[0], "--session", session_id, *args[1:])
                assert got.returncode == 1, (args, got.stdout, got.stderr)
                assert "FAKE" not in got.stdout
                assert got.stderr.count("\n") == 1, got.stderr
                assert "protocol version 2" in got.stderr, got.stderr
                assert f"version {protocol.PROTOCOL_VERSION}" in got.stderr
    finally:  # never let the cleanup "kill" this process
        doc["sessions"][0]["status"] = "exited"
        home.state_file.write_text(json.dumps(doc))


def test_worker_refuses_a_request_of_another_version(agentty_home: Path) -> None:
    rec = agentty_json("start", "--", "cat")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(10)
            sock.connect(rec["socket"])
            request = {"v": 2, "method": "text", "params": {"data": "NOT-TYPED\r"}}
            sock.sendall(json.dumps(request).encode() + b"\n")
            reply = json.loads(sock.makefile("rb").readline())
        assert reply["ok"] is False and reply["error"]["code"] == "version_mismatch"
        assert "version 2" in reply["error"]["message"]
        assert f"version {protocol.PROTOCOL_VERSION}" in reply["error"]["message"]
        screen = agentty_json("get", "--session", rec["id"])
        assert not any("NOT-TYPED" in line for line in screen["lines"])
    finally:
        agentty("kill", "--session", rec["id"], "--timeout", "0.5")
    wait_until(lambda: not Path(rec["socket"]).exists(), timeout=10)
