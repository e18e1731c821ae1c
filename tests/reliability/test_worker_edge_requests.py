"""Requests at the edges (issue 16, item 18): `signal` while the program's processes come and
go or just ended, and a lone surrogate in `text` or `key`. Every answer is a result or a
specific error, never `internal`, and the worker log holds no traceback."""

from __future__ import annotations

import functools
import json
import socket
from pathlib import Path
from typing import Any

from tests.reliability.conftest import agentty, start, wait_until

# Processes of the foreground group start and end all the time.
CHURN = (
    "echo churn-ready; "
    "while :; do for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16; do sleep 0.001 & done; wait; done"
)


def _request(path: str, method: str, params: dict[str, Any]) -> dict[str, Any]:
    """One request on a raw socket; `json.dumps` keeps a lone surrogate as `\\ud800`."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(10)
        sock.connect(path)
        sock.sendall(json.dumps({"v": 1, "id": 1, "method": method, "params": params}).encode())
        sock.sendall(b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = sock.recv(1 << 16)
            if not chunk:
                break
            buf += chunk
    value = json.loads(buf)
    assert isinstance(value, dict)
    return value


def _code(reply: dict[str, Any]) -> str | None:
    error = reply.get("error")
    return str(error["code"]) if isinstance(error, dict) else None


def _log(home: Path, sid: str) -> str:
    return (home / "logs" / f"{sid}.log").read_text(errors="replace")


def test_signal_while_group_members_come_and_go(agentty_home: Path) -> None:
    rec = start("--", "sh", "-c", CHURN)
    sid = rec["id"]
    agentty("wait", "--session", sid, "--text", "churn-ready", check=True)
    for _ in range(150):
        reply = _request(rec["socket"], "signal", {"name": "CONT"})
        assert reply["ok"] is True, reply
    assert "Traceback" not in _log(agentty_home, sid)
    assert agentty("kill", "--session", sid).returncode == 0


def test_signal_right_after_the_exit(agentty_home: Path) -> None:
    for _ in range(5):
        rec = start("--", "sh", "-c", "read x; exit 0")
        sid = rec["id"]
        # The exit and the signal race: either it is signalled or the answer is `exited`.
        _request(rec["socket"], "text", {"data": "\r"})
        codes = set()
        for _ in range(50):
            try:
                reply = _request(rec["socket"], "signal", {"name": "TERM"})
            except (OSError, ValueError):
                break  # the worker finished and closed its socket
            codes.add(_code(reply))
            if _code(reply) == "exited":
                break
        assert codes <= {None, "exited"}, codes
        wait_until(functools.partial(_ended, sid), timeout=15)
        assert "Traceback" not in _log(agentty_home, sid)


def _ended(sid: str) -> bool:
    proc = agentty("status", "--json", check=True)
    return any(
        r["id"] == sid and r["status"] == "exited" for r in json.loads(proc.stdout)["sessions"]
    )


def test_lone_surrogate_in_text_and_key_is_a_bad_request(agentty_home: Path) -> None:
    rec = start("--", "cat")
    sid = rec["id"]
    for method, params in (
        ("text", {"data": "a\ud800b"}),
        ("text", {"data": "\udfff", "enter": True}),
        ("key", {"keys": ["\ud800"]}),
        ("key", {"keys": ["Ctrl+\udc00"]}),
    ):
        reply = _request(rec["socket"], method, params)
        assert reply["ok"] is False and _code(reply) in ("bad_request", "invalid_key"), reply
        assert reply["error"]["exit_code"] == 2, reply
    # Bytes that are not UTF-8 still travel as surrogate escapes (what argv decoding gives).
    assert _request(rec["socket"], "text", {"data": "ok-\udcff\n"})["ok"] is True
    assert "Traceback" not in _log(agentty_home, sid)
    assert agentty("get", "--session", sid).returncode == 0
    assert agentty("kill", "--session", sid).returncode == 0
