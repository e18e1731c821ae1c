"""`subscribe {"interval": S}` against a real worker: at most one event each S seconds, each
carrying every row changed since the subscriber's last one, and nothing owed is ever lost
(a quiet screen, the program's end)."""

from __future__ import annotations

import json
import select
import socket
import sys
import time
from pathlib import Path

import pytest

from tests.helpers.cli import agentty, agentty_json

# Prints a numbered line every 5 ms (the screen scrolls: every row changes each time), then
# says so and waits: the screen is quiet from then on.
PRINTER = (
    "import time\n"
    "for i in range(300):\n"
    "    print(f'line {i:04d}', flush=True)\n"
    "    time.sleep(0.005)\n"
    "print('printer-done', flush=True)\n"
    "input()\n"
)


class Stream:
    """One `subscribe` connection, read into the rows it has been sent."""

    def __init__(self, rec: dict[str, object], params: dict[str, object]) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(str(rec["socket"]))
        request = {"v": 1, "method": "subscribe", "params": params}
        self.sock.sendall(json.dumps(request).encode() + b"\n")
        self.buf = b""
        self.events: list[tuple[float, dict[str, object]]] = []
        self.rows: dict[int, str] = {}

    def take(self) -> bool:
        """Take in what has arrived; False at the stream's end."""
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            return False
        self.buf += chunk
        while b"\n" in self.buf:
            line, _, self.buf = self.buf.partition(b"\n")
            message = json.loads(line)
            self.events.append((time.monotonic(), message))
            for row, runs in message.get("rows", {}).items():
                self.rows[int(row)] = "".join(run[0] for run in runs).rstrip()
        return True

    def read(self, until: float) -> None:
        """Take in what arrives until the monotonic time `until` (or the stream's end)."""
        read_all([self], until)

    def screen(self) -> list[str]:
        return [self.rows.get(r, "") for r in range(24)]

    def close(self) -> None:
        self.sock.close()


def read_all(streams: list[Stream], until: float) -> None:
    """Read every stream at once until the monotonic time `until` (or they all ended)."""
    open_ = list(streams)
    while open_ and (left := until - time.monotonic()) > 0:
        ready, _, _ = select.select([s.sock for s in open_], [], [], left)
        for stream in [s for s in open_ if s.sock in ready]:
            if not stream.take():
                open_.remove(stream)


def test_a_paced_subscriber_gets_fewer_events_and_the_same_screen(agentty_home: Path) -> None:
    rec = agentty_json("start", "--", sys.executable, "-c", PRINTER)
    every, paced = Stream(rec, {}), Stream(rec, {"interval": 0.25})
    try:
        began = time.monotonic()
        read_all([every, paced], began + 1.0)  # the same second of scrolling output
        window = time.monotonic() - began
        agentty("wait", "--text", "printer-done", "--timeout", "30", check=True)
        quiet = time.monotonic() + 1.0  # more than the interval: what is owed has gone
        read_all([every, paced], quiet)
        # The worker sends a paced subscriber one event each 0.25 s at most (+ the first
        # screen, + one sent just before the window and read in it).
        in_window = [t for t, _ in paced.events if t - began <= window]
        assert len(in_window) <= window / 0.25 + 3, [round(t - began, 3) for t in in_window]
        assert len(every.events) > len(paced.events)
        # Every row changed reached both: the same screen as `get`, the last line included.
        lines = [line.rstrip() for line in agentty_json("get")["lines"]]
        assert "printer-done" in lines
        assert paced.screen() == lines
        assert every.screen() == lines
    finally:
        every.close()
        paced.close()
        agentty("kill", check=True)


def test_a_change_on_a_quiet_screen_reaches_a_paced_subscriber_on_its_own(
    agentty_home: Path,
) -> None:
    rec = agentty_json("start", "--", "cat")
    asked = time.monotonic()
    stream = Stream(rec, {"interval": 1.5})
    try:
        stream.read(asked + 0.3)
        assert len(stream.events) == 1  # the whole screen, at once
        agentty("text", "--enter", "quiet-change", check=True)  # then nothing more happens
        stream.read(asked + 6.0)
        assert any("quiet-change" in row for row in stream.rows.values())
        second = stream.events[1][0]
        assert second - asked >= 1.5  # not before its interval from the subscribe
    finally:
        stream.close()
        agentty("kill", check=True)


@pytest.mark.parametrize("params", [{"interval": 10}, {}], ids=["paced", "default"])
def test_the_program_s_end_sends_what_a_subscriber_is_owed(
    agentty_home: Path, params: dict[str, object]
) -> None:
    """The last output, printed just before the exit: a default subscriber lost it too (the
    streams were closed before the push it was waiting for)."""
    rec = agentty_json("start", "--", "sh", "-c", "read x; echo last-words-$x")
    stream = Stream(rec, params)
    try:
        stream.read(time.monotonic() + 0.3)
        started = time.monotonic()
        agentty("text", "--enter", "go", check=True)
        stream.read(started + 8.0)  # returns at the stream's end
        assert time.monotonic() - started < 8.0, "the stream did not end with the program"
        assert any("last-words-go" in row for row in stream.rows.values())
    finally:
        stream.close()


@pytest.mark.parametrize("interval", [-1, 11, "0.5", True, [1]])
def test_a_bad_interval_is_refused_with_a_reason(agentty_home: Path, interval: object) -> None:
    rec = agentty_json("start", "--", "cat")
    stream = Stream(rec, {"interval": interval})
    try:
        stream.read(time.monotonic() + 2.0)
        (_, answer), *more = stream.events
        assert answer["ok"] is False and not more
        error = answer["error"]
        assert isinstance(error, dict)
        assert error["code"] == "bad_request"
        assert "interval" in str(error["message"])
        assert agentty_json("get")["size"] == {"cols": 80, "rows": 24}  # the worker serves on
    finally:
        stream.close()
        agentty("kill", check=True)
