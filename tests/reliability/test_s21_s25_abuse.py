"""Scenarios S21, S22, S24, S25: output and input abuse (reliability.md section 4.D).
S23 (malformed IPC) lives in `test_ipc_fuzz.py`."""

from __future__ import annotations

import json
import os
import random
import re
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.reliability.conftest import (
    PYTHON,
    agentty,
    agentty_json,
    alive_of_home,
    record,
    start,
    wait_until,
)

RSS_LIMIT = 150 * 1024 * 1024
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _du(path: Path) -> int:
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file())


@pytest.mark.parametrize("flood", ["yes", "base64", "seq"])
def test_s21_output_flood(agentty_home: Path, flood: str) -> None:
    argv = {
        "yes": ["yes", "flood-line"],
        "base64": ["sh", "-c", "cat /dev/urandom | base64"],
        "seq": ["seq", "1000000000"],
    }[flood]
    rec = start("--", *argv)
    worker = psutil.Process(rec["workerPid"])
    deadline = time.monotonic() + 3.0
    peak = 0
    while time.monotonic() < deadline:
        peak = max(peak, worker.memory_info().rss)
        t0 = time.monotonic()
        got = agentty("get", "--session", rec["id"], timeout=30)
        assert got.returncode == 0, got.stderr
        assert time.monotonic() - t0 < 10  # answered during the flood
    peak = max(peak, worker.memory_info().rss)
    assert peak < RSS_LIMIT, f"worker RSS {peak / 2**20:.0f} MiB"
    log = agentty_home / "logs" / f"{rec['id']}.log"
    assert log.stat().st_size < 64 * 1024  # the log does not grow with output
    assert _du(agentty_home) < 8 * 1024 * 1024
    t0 = time.monotonic()
    kill = agentty("kill", "--session", rec["id"], "--timeout", "1")
    assert kill.returncode == 0, kill.stderr
    assert time.monotonic() - t0 < 20
    wait_until(lambda: alive_of_home(agentty_home) == [])


Truecolour = Callable[[int, int, int], tuple[dict[str, Any], psutil.Process, int]]


@pytest.fixture
def truecolour(programs: Path) -> Truecolour:
    """The S21 truecolour set-up: `rel_truecolour.py` in a COLS x ROWS session, ready, its
    worker's RSS taken as the baseline, then told to draw LINES rows of per-cell 24-bit
    colours. Returns the record, the worker process and that baseline."""

    def begin(cols: int, rows: int, lines: int) -> tuple[dict[str, Any], psutil.Process, int]:
        program = str(programs / "rel_truecolour.py")
        size = ["--cols", str(cols), "--rows", str(rows)]
        rec = start(*size, "--", PYTHON, program, str(cols), str(lines))
        agentty("wait", "--session", rec["id"], "--text", "truecolour-ready", check=True)
        worker = psutil.Process(rec["workerPid"])
        baseline = worker.memory_info().rss
        agentty("text", "--session", rec["id"], "--enter", "go", check=True)
        return rec, worker, baseline

    return begin


def test_s21_per_cell_truecolour(agentty_home: Path, truecolour: Truecolour) -> None:
    """What image viewers print: every cell its own 24-bit colours. Each distinct style used
    to stay in the scrollback's style table for good (~330 bytes a cell: 186 MiB at 80x24
    after 6000 lines); the table is bounded and old lines lose their colours instead."""
    cols, lines = 200, 750  # 150 000 distinct styles: ~50 MiB unbounded
    rec, worker, baseline = truecolour(cols, 50, lines)
    peak = baseline

    def sampled() -> bool:
        nonlocal peak
        peak = max(peak, worker.memory_info().rss)
        got = agentty("get", "--session", rec["id"], "--ansi", "--json", timeout=30)
        assert got.returncode == 0, got.stderr  # `get --ansi` answers during the flood
        return "TRUECOLOUR-DONE" in "".join(json.loads(got.stdout)["lines"])

    wait_until(sampled, timeout=300, interval=0.2)
    peak = max(peak, worker.memory_info().rss)
    growth = peak - baseline
    assert growth < 32 * 1024 * 1024, f"worker grew {growth / 2**20:.0f} MiB"
    assert peak < RSS_LIMIT, f"worker RSS {peak / 2**20:.0f} MiB"
    screen = agentty_json("get", "--session", rec["id"], "--ansi", "--scrollback")
    assert len(screen["scrollback"]) > lines - 50
    assert "\x1b[0;38;2;" in "".join(screen["ansi"])  # the visible rows keep their colours
    kill = agentty("kill", "--session", rec["id"], "--timeout", "1")
    assert kill.returncode == 0, kill.stderr
    wait_until(lambda: alive_of_home(agentty_home) == [])


@pytest.mark.parametrize(
    ("cols", "rows", "lines", "limit"),
    [
        (200, 50, 50, 48 * 2**20),  # 10 000 distinct styles: all kept exact
        (1000, 1000, 300, 96 * 2**20),  # 300 000: past the store's bound (approximated)
    ],
)
def test_s21_per_cell_truecolour_screen(
    agentty_home: Path, truecolour: Truecolour, cols: int, rows: int, lines: int, limit: int
) -> None:
    """A large screen where every cell has its own 24-bit fg and bg: pyte kept a Char with
    its own colour strings per cell (~500 MiB at 1000x1000) and the first `get --ansi` took
    seconds. The visible screen's styles are interned in a bounded store (exact, then
    approximated): the worker stays small and `get`/`get --ansi` answer with the screen."""
    rec, worker, baseline = truecolour(cols, rows, lines)
    peak = baseline

    def drawn() -> bool:
        nonlocal peak
        peak = max(peak, worker.memory_info().rss)
        got = agentty("get", "--session", rec["id"], "--json", timeout=120)
        assert got.returncode == 0, got.stderr  # `get` answers during the flood
        return "TRUECOLOUR-DONE" in "".join(json.loads(got.stdout)["lines"])

    wait_until(drawn, timeout=900, interval=0.5)
    peak = max(peak, worker.memory_info().rss)
    screen = agentty_json("get", "--session", rec["id"], "--ansi", timeout=120)
    peak = max(peak, worker.memory_info().rss)
    half_blocks = [row for row in screen["lines"] if row == "\u2580" * cols]
    assert len(half_blocks) >= min(lines, rows - 2)
    ansi = [row for row in screen["ansi"] if "\u2580" in row]
    assert len(ansi) == len(half_blocks)
    assert all(row.count("\u2580") == cols for row in ansi)
    if lines * cols <= 16384:  # below the store's bound: every colour exact
        assert ansi[-1] == _truecolour_rows(cols, lines)[-1]
    else:
        assert "\x1b[0;38;2;" in ansi[-1]  # colours survive, approximated past the bound
    growth = peak - baseline
    assert growth < limit, f"worker grew {growth / 2**20:.0f} MiB"
    kill = agentty("kill", "--session", rec["id"], "--timeout", "1")
    assert kill.returncode == 0, kill.stderr
    wait_until(lambda: alive_of_home(agentty_home) == [])


def _truecolour_rows(cols: int, lines: int) -> list[str]:
    """What `get --ansi` shows for the rows rel_truecolour.py prints (same seed)."""
    rnd = random.Random(16)
    rows = []
    for _ in range(lines):
        cells = []
        for _ in range(cols):
            fg, bg = rnd.getrandbits(24), rnd.getrandbits(24)
            cells.append(
                f"\x1b[0;38;2;{fg >> 16};{(fg >> 8) & 255};{fg & 255};"
                f"48;2;{bg >> 16};{(bg >> 8) & 255};{bg & 255}m\u2580"
            )
        rows.append("".join(cells) + "\x1b[0m")
    return rows


def test_s22_binary_garbage_and_malformed_escapes(agentty_home: Path, programs: Path) -> None:
    rec = start("--", PYTHON, str(programs / "rel_malformed_escapes.py"))
    worker = psutil.Process(rec["workerPid"])
    peak = 0

    def sampled(marker: str) -> bool:
        nonlocal peak
        peak = max(peak, worker.memory_info().rss)
        got = agentty("get", "--session", rec["id"], "--json", timeout=30)
        return got.returncode == 0 and marker in got.stdout

    wait_until(lambda: sampled("OK-2"), timeout=90, interval=0.2)
    t_end = time.monotonic() + 1.0
    while time.monotonic() < t_end:  # the unterminated OSC is being read now
        peak = max(peak, worker.memory_info().rss)
    proc = agentty("get", "--session", rec["id"], "--json")
    raw = proc.stdout.encode()
    screen = json.loads(raw.decode("utf-8"))  # strict: valid UTF-8
    text = agentty("get", "--session", rec["id"]).stdout
    text.encode("utf-8")
    assert "OK-1" in text and "OK-2" in text
    assert "\ufffd" in text  # invalid bytes became U+FFFD
    assert not CONTROL.search(text), repr(CONTROL.findall(text)[:5])
    assert "\x1b" not in "".join(screen["lines"])
    assert len(str(screen.get("title") or "")) <= 64 * 1024  # OSC payloads are capped
    assert peak < RSS_LIMIT, f"worker RSS {peak / 2**20:.0f} MiB"
    assert record(rec["id"])["status"] == "running"
    assert agentty("kill", "--session", rec["id"], "--timeout", "0.5").returncode == 0


def _request(sock: socket.socket, method: str, params: dict[str, object]) -> dict[str, object]:
    sock.sendall(json.dumps({"v": 1, "method": method, "params": params}).encode() + b"\n")
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = sock.recv(1 << 16)
        if not chunk:
            break
        buf += chunk
    value = json.loads(buf)
    assert isinstance(value, dict)
    return value


def test_s24_input_nobody_reads(agentty_home: Path, programs: Path, tmp_path: Path) -> None:
    rec = start("--", PYTHON, str(programs / "rel_no_reader.py"))
    agentty("wait", "--text", "not-reading", check=True)
    payload = tmp_path / "big.txt"
    payload.write_bytes(b"x" * (10 * 1024 * 1024))
    # Delivered in parts (the tty takes it and echoes it all, which the emulator then
    # parses: slow on a loaded machine, so the bound is the timeout, a hang and no more),
    # or rejected in one line.
    big = agentty("text", "--session", rec["id"], "--file", str(payload), timeout=180)
    if big.returncode != 0:
        assert big.stderr.startswith("agentty: error: ") and big.stderr.count("\n") == 1
    # Many key requests on one connection: accepted (the tty discards what a canonical-mode
    # reader never takes) or refused with `input_full`; never a hung worker.
    refused = 0
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(10)
        sock.connect(rec["socket"])
        for _ in range(2000):  # up to 4 MB of keys: beyond any sane input cap
            reply = _request(sock, "key", {"keys": ["a"] * 2000})
            if not reply["ok"]:
                error = reply["error"]
                assert isinstance(error, dict) and error["code"] == "input_full", reply
                refused += 1
                break
    t0 = time.monotonic()
    assert agentty("get", "--session", rec["id"]).returncode == 0
    assert time.monotonic() - t0 < 5
    t0 = time.monotonic()
    kill = agentty("kill", "--session", rec["id"], "--timeout", "0.5")
    assert kill.returncode == 0, kill.stderr
    assert time.monotonic() - t0 < 10
    wait_until(lambda: alive_of_home(agentty_home) == [])


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_s25_bad_identifiers_and_options(
    agentty_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    tmp_before = set(os.listdir("/tmp"))
    rec = start("--name", "good", "--", "sleep", "1000000")
    home_before = _files(agentty_home)
    for ref in ["a/b", "../x", "..", "a\nb", "x" * 10_000, "deadbeef", "nosuch"]:
        for cmd in (["get", "--session", ref], ["text", "--session", ref, "hi"], ["attach", ref]):
            proc = agentty(*cmd)
            assert proc.returncode == 2, (cmd[0], ref[:20], proc.stderr)
            assert "no such session" in proc.stderr and proc.stderr.count("\n") == 1
    for bad_name in ["a/b", "..", "../x", "a\nb", "x" * 10_000, "-x"]:
        proc = agentty("start", "--name", bad_name, "--", "sleep", "1")
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1, (bad_name[:20], proc.stderr)
    dup = agentty("start", "--name", "good", "--", "sleep", "1000000")
    assert dup.returncode == 2 and "already named 'good'" in dup.stderr
    assert agentty("get", "--lines", "0").returncode == 0
    for lines in ["-1", "1e9", "abc", "10000000000"]:
        proc = agentty("get", "--lines", lines)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1, (lines, proc.stderr)
    seq = agentty_json("get")["seq"]
    proc = agentty("key", "NoSuchKey")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert agentty_json("get")["seq"] == seq
    assert _files(agentty_home) == home_before
    # The active session exits: input says so (D7); once gc'd: "no active session".
    agentty("kill", check=True)
    proc = agentty("text", "hi")
    assert proc.returncode == 1 and f"session {rec['id']} exited" in proc.stderr
    agentty("gc", check=True)
    proc = agentty("text", "hi")
    assert proc.returncode == 2 and "no active session" in proc.stderr
    assert list(tmp_path.iterdir()) == []
    leaked = {n for n in set(os.listdir("/tmp")) - tmp_before if ".." in n or "/" in n}
    assert leaked == set()


@pytest.mark.parametrize("odd", ["new\nline", "star * and space", 'quote\'s "both"'])
def test_a_home_whose_path_holds_a_newline_or_a_glob_serves_as_any(
    tmp_path: Path, odd: str
) -> None:
    """A shell's `$(ls -d DIR*)` that matched two directories made a home path with a
    newline in it (it happened in a session of ours): every command works there, and its
    processes are ended as in any other home."""
    home = tmp_path / odd
    home.mkdir(mode=0o700)
    env = {**os.environ, "AGENTTY_HOME": str(home)}
    try:
        started = json.loads(agentty("start", "--json", "--", "cat", env=env, check=True).stdout)
        agentty("text", "--enter", "in-an-odd-home", env=env, check=True)
        agentty("wait", "--regex", "^in-an-odd-home$", "--after", "0", env=env, check=True)
        listed = json.loads(agentty("status", "--json", env=env, check=True).stdout)
        assert [s["id"] for s in listed["sessions"]] == [started["id"]]
        assert listed["home"] == str(home)
        agentty("kill", env=env, check=True)
        assert agentty("doctor", env=env).returncode == 0
    finally:
        for proc in alive_of_home(home):
            proc.kill()
