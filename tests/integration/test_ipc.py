"""IPC framing against a real worker: one request per line, errors never end the service."""

from __future__ import annotations

import contextlib
import json
import socket
from pathlib import Path

from tests.helpers.cli import agentty, agentty_json


def _connect(rec: dict[str, object]) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(str(rec["socket"]))
    return sock


def _read_lines(sock: socket.socket, count: int) -> list[dict[str, object]]:
    buf = b""
    while buf.count(b"\n") < count:
        chunk = sock.recv(65536)
        assert chunk, "worker closed the connection"
        buf += chunk
    return [json.loads(line) for line in buf.split(b"\n")[:count]]


def test_pipelined_split_and_bad_requests_on_one_connection() -> None:
    rec = agentty_json("start", "--", "sleep", "60")
    with _connect(rec) as sock:
        sock.sendall(
            b'{"v":1,"method":"ping","params":{}}\n{"v":1,"method":"nope","params":{}}\nnot json\n'
        )
        sock.sendall(b'{"v":1,"method":"get",')
        sock.sendall(b'"params":{}}\n{"v":1,"method":"key","params":{"keys":["Bogus"]}}\n')
        ping, unknown, garbage, get, bad_key = _read_lines(sock, 5)
    assert all(m["v"] == 1 for m in (ping, unknown, garbage, get, bad_key))
    assert ping["ok"] is True and ping["result"]["pid"] == rec["workerPid"]  # type: ignore[index]
    assert unknown["ok"] is False and unknown["error"]["code"] == "unknown_method"  # type: ignore[index]
    assert garbage["ok"] is False and garbage["error"]["code"] == "bad_request"  # type: ignore[index]
    assert get["ok"] is True and len(get["result"]["lines"]) == 24  # type: ignore[index]
    assert bad_key["ok"] is False and bad_key["error"]["code"] == "invalid_key"  # type: ignore[index]
    agentty("kill", check=True)


def test_oversized_line_gets_an_error_and_the_worker_keeps_serving() -> None:
    rec = agentty_json("start", "--", "sleep", "60")
    with _connect(rec) as sock:
        # The worker may answer and close before we finish sending: what it should do.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(b"x" * (2 << 20))
        try:
            (reply,) = _read_lines(sock, 1)
            assert reply["ok"] is False and reply["error"]["code"] == "too_large"  # type: ignore[index]
        except ConnectionResetError:
            pass
    assert agentty_json("get")["size"] == {"cols": 80, "rows": 24}
    agentty("kill", check=True)


def test_socket_and_home_are_private(agentty_home: Path) -> None:
    rec = agentty_json("start", "--", "sleep", "60")
    sock_path = Path(str(rec["socket"]))
    assert sock_path.parent == agentty_home / "sockets"
    assert oct(sock_path.parent.stat().st_mode & 0o777) == "0o700"
    assert oct(sock_path.lstat().st_mode & 0o777) == "0o600"
    agentty("kill", check=True)
