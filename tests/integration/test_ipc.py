"""IPC framing against a real worker: one request per line, errors never end the service."""

from __future__ import annotations

import contextlib
import json
import socket
from pathlib import Path

import pytest

from tests.helpers.cli import agentty, agentty_json, wait_until


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


def test_the_client_refuses_an_oversized_request_before_sending_it() -> None:
    # Sent, it would end as a broken pipe now and then (the worker closes mid-send): the
    # client says why, sends nothing, and the connection stays usable.
    from agentty_core.errors import RemoteError
    from agentty_core.ipc.client import Connection

    rec = agentty_json("start", "--", "sleep", "60")
    with Connection(str(rec["socket"]), expect_pid=int(str(rec["workerPid"]))) as conn:
        with pytest.raises(RemoteError, match="request line too long") as refused:
            conn.call("text", {"data": "x" * 1_200_000})
        assert refused.value.code == "too_large"
        assert conn.call("ping")["pid"] == rec["workerPid"]
    agentty("kill", check=True)


def test_socket_and_home_are_private(agentty_home: Path) -> None:
    rec = agentty_json("start", "--", "sleep", "60")
    sock_path = Path(str(rec["socket"]))
    assert sock_path.parent == agentty_home / "sockets"
    assert oct(sock_path.parent.stat().st_mode & 0o777) == "0o700"
    assert oct(sock_path.lstat().st_mode & 0o777) == "0o600"
    agentty("kill", check=True)


def test_requests_behind_a_pending_wait_are_answered_in_order() -> None:
    """A wait that is not yet satisfied holds the connection's later requests; other
    connections are served meanwhile, and the waiting one resumes in order."""
    rec = agentty_json("start", "--", "cat")
    with _connect(rec) as sock, _connect(rec) as other:
        sock.sendall(
            b'{"v":1,"method":"wait","params":{"text":"READY","timeout":10}}\n'
            b'{"v":1,"method":"ping","params":{}}\n'
        )
        other.sendall(b'{"v":1,"method":"text","params":{"data":"READY"}}\n')
        (typed,) = _read_lines(other, 1)
        assert typed["ok"] is True
        waited, ping = _read_lines(sock, 2)
    assert waited["ok"] is True and waited["result"]["fired"] == "text"  # type: ignore[index]
    assert ping["ok"] is True and ping["result"]["pong"] is True  # type: ignore[index]
    agentty("kill", check=True)


def test_a_wait_already_satisfied_is_answered_at_once_and_a_timeout_carries_the_screen() -> None:
    rec = agentty_json("start", "--", "sh", "-c", "echo here; exec sleep 60")
    agentty("wait", "--text", "here", check=True)
    with _connect(rec) as sock:
        sock.sendall(
            b'{"v":1,"method":"wait","params":{"text":"here","timeout":5}}\n'
            b'{"v":1,"method":"wait","params":{"text":"never","timeout":0.2}}\n'
        )
        hit, miss = _read_lines(sock, 2)
    assert hit["ok"] is True and hit["result"]["match"] == {"row": 0, "col": 0}  # type: ignore[index]
    assert miss["ok"] is False and miss["error"]["code"] == "timeout"  # type: ignore[index]
    assert "here" in miss["error"]["screen"]["lines"][0]  # type: ignore[index]
    agentty("kill", check=True)


def test_client_reuses_its_connection_and_notices_a_closed_one(agentty_home: Path) -> None:
    from agentty_core.client import Client

    with Client() as client:
        rec = client.start(["cat"])
        sid = rec["id"]
        client.text(sid, "one\r")
        conn = client._idle[sid]
        client.wait(sid, text="one", timeout=5)
        assert client._idle[sid] is conn  # the same connection served both calls
        conn.sock.shutdown(socket.SHUT_RDWR)  # as when the worker closes an idle connection
        client.text(sid, "two\r")
        assert client._idle[sid] is not conn
        assert client.wait(sid, text="two", timeout=5)["fired"] == "text"
        client.kill(sid)
    assert client._idle == {}


def test_a_kept_connection_spares_the_state_file_until_the_session_ends(
    agentty_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Calls by id through an open connection to the worker need no record lookup; once
    the program ends, input is refused as for any ended session."""
    from agentty_core.client import Client
    from agentty_core.errors import SessionNotRunning
    from agentty_core.protocol import str_list
    from agentty_core.state import records

    with Client() as client:
        sid = str(client.start(["cat"])["id"])
        client.text(sid, "one\r")
        reads: list[str] = []
        real = records.records

        def counted(home: object) -> list[records.Record]:
            reads.append("read")
            return real(home)  # type: ignore[arg-type]

        monkeypatch.setattr(records, "records", counted)
        client.text(sid, "two\r")
        assert client.wait(sid, text="two", timeout=5)["fired"] == "text"
        client.key(sid, ["Enter"])
        assert "two" in str_list(client.get(sid)["lines"])
        assert reads == []
        client.key(sid, ["Ctrl+D"])  # cat ends
        client.wait(sid, exit=True, timeout=10)
        with pytest.raises(SessionNotRunning):
            client.text(sid, "too late\r")


def test_a_silent_worker_costs_the_timeout_not_more(tmp_path: Path) -> None:
    """The deadline lives in the kernel (SO_RCVTIMEO): a socket that accepts and never
    answers gives a clear error once the timeout is up."""
    import time

    from agentty_core.errors import WorkerUnreachable
    from agentty_core.ipc.client import Connection

    path = str(tmp_path / "silent.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(path)
        server.listen()
        with Connection(path, timeout=0.3) as conn:
            started = time.monotonic()
            try:
                conn.call("ping")
            except WorkerUnreachable as exc:
                assert "did not answer in time" in str(exc)
            else:
                raise AssertionError("a silent server answered")
            assert 0.25 <= time.monotonic() - started < 5


def test_a_flood_of_requests_behind_a_pending_wait_is_held_then_answered_in_order() -> None:
    """Past a line's worth of queued requests the worker stops reading (the kernel's buffer
    holds the rest) and goes on once the pending wait is answered."""
    import threading

    rec = agentty_json("start", "--", "cat")
    count = 30_000  # ~1.1 MiB of pings: more than a request line may hold
    with _connect(rec) as sock:
        sock.sendall(b'{"v":1,"method":"wait","params":{"text":"GO","timeout":30}}\n')
        sender = threading.Thread(
            target=sock.sendall, args=(b'{"v":1,"method":"ping","params":{}}\n' * count,)
        )
        sender.start()
        agentty("text", "GO", check=True)  # another connection: served meanwhile
        replies = _read_lines(sock, count + 1)
        sender.join(timeout=30)
    assert replies[0]["ok"] is True and replies[0]["result"]["fired"] == "text"  # type: ignore[index]
    assert all(r["ok"] is True and r["result"]["pong"] is True for r in replies[1:])  # type: ignore[index]
    agentty("kill", check=True)


def test_what_a_subscriber_sends_is_ignored_and_the_stream_goes_on() -> None:
    rec = agentty_json("start", "--", "cat")
    with _connect(rec) as sock:
        sock.sendall(b'{"v":1,"method":"subscribe","params":{}}\n')
        (first,) = _read_lines(sock, 1)
        assert first["event"] == "screen"
        sock.sendall(b"x" * (3 << 20))  # no newline, far past the line limit: ignored
        agentty("text", "still-streaming", check=True)
        buf = b""
        while b"still-streaming" not in buf:
            chunk = sock.recv(65536)
            assert chunk, "the worker closed the stream"
            buf += chunk
    assert agentty_json("get")["size"] == {"cols": 80, "rows": 24}
    agentty("kill", check=True)


def test_a_kept_connection_lost_at_the_last_moment_is_retried_only_for_reads(
    agentty_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lost before the request went out (its send failed: none of it was read), any request
    is asked again; lost after it went out, only one that changes nothing is."""
    from agentty_core.client import Client
    from agentty_core.errors import WorkerUnreachable

    with Client() as client:
        sid = str(client.start(["cat"])["id"])
        client.get(sid)

        def lose_kept_connection() -> None:
            conn = client._idle[sid]
            conn.sock.shutdown(socket.SHUT_RDWR)  # closed, but it still looks reusable
            monkeypatch.setattr(conn, "reusable", lambda: True)

        def lose_the_answer() -> None:
            conn = client._idle[sid]

            def closed(deadline: float | None = None) -> dict[str, object]:
                raise WorkerUnreachable("worker closed the connection", "closed")

            monkeypatch.setattr(conn, "read_message", closed)

        lose_kept_connection()
        assert client.get(sid)["size"] == {"cols": 80, "rows": 24}  # asked again, once
        lose_kept_connection()
        client.text(sid, "sent-once\r")  # none of it went out: asked again
        lose_the_answer()
        with pytest.raises(WorkerUnreachable):
            client.text(sid, "typed-once-at-most\r")  # it may have been done: not repeated
        client.text(sid, "marker\r")  # typed after what the worker did with the request

        def marked() -> list[object] | None:
            """The screen once "marker" is there twice, its echo and cat's copy: cat has read
            and copied all before it (its echo alone comes at once: a loaded machine showed
            it before cat's copy of "sent-once")."""
            lines = client.get(sid)["lines"]
            return lines if isinstance(lines, list) and lines.count("marker") == 2 else None

        lines = wait_until(marked, timeout=20)
        assert lines is not None
        assert lines.count("sent-once") == 2  # typed once: its echo and cat's copy
        # Typed once, or not at all (the worker types nothing for a client that is gone).
        assert lines.count("typed-once-at-most") in (0, 2), lines
        client.kill(sid)


def test_a_kill_answer_says_what_the_record_says() -> None:
    """The answer carries the record's status once the exit is written, so that `kill` need
    not read the state file after it (the lane prints from the answer)."""
    trap = "trap 'exit 7' HUP; echo up; while :; do sleep 0.05; done"
    rec = agentty_json("start", "--", "sh", "-c", trap)
    agentty("wait", "--text", "up", check=True)
    with _connect(rec) as sock:
        sock.sendall(b'{"v":1,"method":"kill","params":{"grace":2}}\n')
        (answer,) = _read_lines(sock, 1)
    assert answer["ok"] is True, answer
    result = answer["result"]
    assert isinstance(result, dict)
    recorded = next(s for s in agentty_json("status")["sessions"] if s["id"] == rec["id"])
    assert result["status"] == recorded["status"] == "exited"
    assert result["exitCode"] == recorded["exitCode"] == 7
    assert result["signal"] is recorded["signal"] is None
