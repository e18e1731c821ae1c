"""S23: malformed and oversized IPC. A hypothesis fuzz of the request parser and of the
worker's dispatcher in process, plus a raw-socket storm against a real worker."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentty_core import protocol
from agentty_core.errors import InvalidKey
from agentty_core.paths import Home
from agentty_core.worker.answers import RequestFailed
from agentty_core.worker.core import Worker
from tests.reliability.conftest import agentty, agentty_json, record, start, wait_until

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
KEYS = [
    "data",
    "data_b64",
    "enter",
    "paste",
    "keys",
    "cols",
    "rows",
    "name",
    "leader",
    "grace",
    "text",
    "regex",
    "gone",
    "stable_ms",
    "changed_since",
    "input",
    "exit",
    "scrollback",
    "ansi",
    "raw",
    "bytes",
    "lines",
]
METHODS = ["ping", "info", "get", "text", "key", "resize", "signal", "wait"]
PARAMS = st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), JSON, max_size=6).map(
    lambda d: {**d, "timeout": d["timeout"]} if "timeout" in d else d
)


@given(st.binary(max_size=512))
@settings(max_examples=300, deadline=None)
def test_s23_decode_line_never_raises_anything_else(data: bytes) -> None:
    try:
        value = protocol.decode_line(data)
    except protocol.BadRequest:
        return
    assert isinstance(value, dict)


@given(JSON)
@settings(max_examples=200, deadline=None)
def test_s23_decode_line_round_trips_objects(value: Any) -> None:
    line = json.dumps({"v": 1, "x": value}).encode()
    with contextlib.suppress(protocol.BadRequest):  # nested too deeply, a huge int, ...
        assert protocol.decode_line(line)["x"] == value or value != value


@pytest.mark.parametrize(
    "line",
    [
        b"[" * 100_000,
        b'{"a": NaN}',
        b'{"a": Infinity}',
        b'{"a": ' + b"9" * 5000 + b"}",
        b"\xff\xfe{}",
        b"x" * (protocol.MAX_LINE + 1),
        b"[]",
        b'"str"',
    ],
    ids=["deep", "nan", "inf", "bigint", "badutf8", "toolong", "array", "string"],
)
def test_s23_decode_line_known_bad_inputs(line: bytes) -> None:
    with pytest.raises(protocol.BadRequest):
        protocol.decode_line(line)


@pytest.fixture
def worker(agentty_home: Path) -> Worker:
    spec: dict[str, object] = {"id": "0123abcd", "cols": 80, "rows": 24}
    return Worker(spec, Home.resolve(), None)


@given(method=st.sampled_from(METHODS) | st.text(max_size=10), params=PARAMS)
@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_s23_dispatch_fails_only_cleanly(
    worker: Worker, method: str, params: dict[str, Any]
) -> None:
    if method == "wait":
        # A wait that is valid would block for its timeout: keep it short.
        params = {**params, "timeout": 0.01}

    async def call() -> object:
        return await asyncio.wait_for(worker.dispatch(method, params), 5)

    try:
        result = asyncio.run(call())
    except (protocol.BadRequest, InvalidKey, RequestFailed):
        return
    assert isinstance(result, dict)
    protocol.ok(result)  # every result can be encoded (no NaN, JSON types only)


def test_s23_dispatch_kill_without_child(worker: Worker) -> None:
    try:
        result = asyncio.run(asyncio.wait_for(worker.dispatch("kill", {"grace": 0.1}), 10))
    except (protocol.BadRequest, RequestFailed):
        return
    assert isinstance(result, dict)


# ---------------------------------------------------------------- raw socket storm


def _connect(path: str) -> socket.socket:
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(path)
    return s


def _line(s: socket.socket) -> bytes:
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = s.recv(1 << 16)
        if not chunk:
            return buf
        buf += chunk
    return buf


def _one(path: str, payload: bytes) -> bytes:
    with _connect(path) as s:
        s.sendall(payload)
        return _line(s)


def test_s23_malformed_ipc_storm(agentty_home: Path) -> None:
    rec = start("--", "cat")
    path, sid = rec["socket"], rec["id"]
    # Each bad request gets one JSON error line (or a close), never a crash.
    bad = [
        b"not json\n",
        b"\xff\xfe\xfd\n",
        b"[" * 100_000 + b"\n",
        b'{"v":1,"method":"get","params":{"lines":NaN}}\n',
        b'{"v":1,"method":"get","params":{"lines":' + b"9" * 5000 + b"}}\n",
        b'{"v":1,"method":"get","params":{"lines":"many"}}\n',
        b'{"v":1,"method":"resize","params":{"cols":-1,"rows":1e308}}\n',
        b'{"v":1,"method":"nope","params":{}}\n',
        b'{"v":1,"method":42,"params":[]}\n',
        b'{"v":1,"method":"key","params":{"keys":[null,{}]}}\n',
    ]
    for payload in bad:
        reply = _one(path, payload)
        if reply:
            message = json.loads(reply)
            assert message["ok"] is False and message["error"]["code"], message
    # 4 MB without a newline: an error or a close, and the worker carries on.
    with _connect(path) as s:
        try:
            s.sendall(b"{" + b"a" * (4 << 20))
            s.shutdown(socket.SHUT_WR)
            reply = _line(s)
        except (BrokenPipeError, ConnectionResetError):
            reply = b""
        if reply:
            assert json.loads(reply)["ok"] is False
    # Many requests on one connection, and a half-closed one still gets its answer.
    with _connect(path) as s:
        for _ in range(500):
            s.sendall(protocol.request("ping"))
            assert json.loads(_line(s))["ok"] is True
    with _connect(path) as s:
        s.sendall(protocol.request("ping"))
        s.shutdown(socket.SHUT_WR)
        assert json.loads(_line(s))["ok"] is True
    # Silent clients never block others; 500 concurrent connections at once.
    silent = [_connect(path) for _ in range(5)]
    try:
        t0 = time.monotonic()
        assert agentty("get", "--session", sid).returncode == 0
        assert time.monotonic() - t0 < 5
        crowd: list[socket.socket] = []
        for _ in range(500):
            try:
                crowd.append(_connect(path))
            except OSError:
                break
        answers: list[bytes] = []

        def ask(s: socket.socket) -> None:
            try:
                s.sendall(protocol.request("ping"))
                # Its answer only: an idle member may be evicted right after it, in one read.
                answers.append(_line(s).split(b"\n", 1)[0])
            except OSError:
                answers.append(b"")

        threads = [threading.Thread(target=ask, args=(s,)) for s in crowd]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        for s in crowd:
            s.close()
        assert any(a and json.loads(a)["ok"] for a in answers)
        for a in answers:
            if a:
                msg = json.loads(a)
                # A full worker makes room by closing the longest idle connection: a crowd
                # member connected but silent so far may be that one, and is told so.
                assert msg["ok"] or msg["error"]["code"] in ("busy", "evicted"), msg
    finally:
        for s in silent:
            s.close()
    # EMFILE: the worker runs out of descriptors (ulimit -n 64) and recovers.
    worker = psutil.Process(rec["workerPid"])
    limits = worker.rlimit(psutil.RLIMIT_NOFILE)
    held: list[socket.socket] = []
    try:
        worker.rlimit(psutil.RLIMIT_NOFILE, (64, limits[1]))
        for _ in range(100):
            try:
                held.append(_connect(path))
            except OSError:
                break
    finally:
        for s in held:
            s.close()
        worker.rlimit(psutil.RLIMIT_NOFILE, limits)
    # After the storm: a normal `get` answers, the program still runs, output unaffected.
    wait_until(lambda: agentty("get", "--session", sid).returncode == 0, timeout=15)
    assert worker.memory_info().rss < 150 * 1024 * 1024
    agentty("text", "--session", sid, "--enter", "after-storm", check=True)
    agentty("wait", "--session", sid, "--text", "after-storm", check=True)
    assert record(sid)["status"] == "running"
    assert psutil.pid_exists(rec["pid"])
    log = (agentty_home / "logs" / f"{sid}.log").read_text()
    # asyncio itself logs the EMFILE accept back-off with a traceback; the worker's own
    # handlers must never have failed.
    for marker in ("request failed", "connection handler failed", "worker failed"):
        assert marker not in log, log[-2000:]
    assert agentty_json("kill", "--session", sid, "--timeout", "0.5")["status"] == "exited"
