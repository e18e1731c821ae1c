"""asciicast v2 recordings of sessions (`start --record`, `record on|off`, `replay`).

The file is what asciinema 2.x and `agg` read: a JSON header line, then one JSON array per
event, `[seconds, code, data]` with codes `o` (output), `i` (input, only when asked: input may
hold secrets), `r` (resize, "COLSxROWS"), `m` (marker) and `x` (exit status, which both
players tolerate). Size-capped like every log: past the cap a last marker says so and
recording stops.
"""

from __future__ import annotations

import codecs
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

MAX_CAST_BYTES = 64 << 20


class Recorder:
    """Appends a session's events to `logs/<id>.cast`, opened without following symlinks."""

    def __init__(
        self,
        path: Path,
        cols: int,
        rows: int,
        *,
        input: bool = False,
        markers: bool = False,
        env: dict[str, str] | None = None,
    ) -> None:
        self.path = path
        self.input = input
        self.markers = markers
        self.started = time.monotonic()
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
        self._fd = os.open(path, flags, 0o600)
        self._size = os.fstat(self._fd).st_size
        self.full = False
        if self._size == 0:
            header = {
                "version": 2,
                "width": cols,
                "height": rows,
                "timestamp": int(time.time()),
                "env": {k: v for k, v in (env or {}).items() if k in ("TERM", "SHELL")},
            }
            self._write(json.dumps(header))
        else:
            # Appending after `record off`/`on`: times continue from the last event.
            self.started -= _last_time(path)

    def _write(self, line: str) -> None:
        data = (line + "\n").encode()
        if self._size + len(data) > MAX_CAST_BYTES:
            if not self.full:
                self.full = True
                note = json.dumps([self._now(), "m", "recording stopped: size cap reached"])
                os.write(self._fd, (note + "\n").encode())
            return
        os.write(self._fd, data)
        self._size += len(data)

    def _now(self) -> float:
        return round(time.monotonic() - self.started, 6)

    def _event(self, code: str, data: str) -> None:
        self._write(json.dumps([self._now(), code, data], ensure_ascii=False))

    def output(self, data: bytes) -> None:
        text = self._decoder.decode(data)
        if text:
            self._event("o", text)

    def typed(self, data: bytes, label: str) -> None:
        if self.markers:
            self._event("m", label)
        if self.input:
            self._event("i", data.decode("utf-8", "replace"))

    def resize(self, cols: int, rows: int) -> None:
        self._event("r", f"{cols}x{rows}")

    def exit(self, status: int) -> None:
        self._event("x", str(status))

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _last_time(path: Path) -> float:
    last = 0.0
    for event in events(path):
        last = _seconds(event[0])
    return last


def _seconds(value: object) -> float:
    return float(value) if isinstance(value, (int, float)) else 0.0


def read_header(path: Path) -> dict[str, object]:
    with open(path, encoding="utf-8") as f:
        header = json.loads(f.readline())
    if not isinstance(header, dict) or header.get("version") != 2:
        raise ValueError(f"{path} is not an asciicast v2 file")
    return header


def events(path: Path) -> Iterator[list[object]]:
    with open(path, encoding="utf-8") as f:
        f.readline()
        for line in f:
            event = json.loads(line)
            if isinstance(event, list) and len(event) == 3:
                yield event


def replay(path: Path, speed: float = 1.0, max_idle: float = 2.0) -> None:
    """Write the recorded output to this terminal with its timing (idle gaps capped)."""
    read_header(path)
    out = sys.stdout
    previous = 0.0
    for at, code, data in events(path):
        delay = min(max(0.0, _seconds(at) - previous), max_idle)
        previous = _seconds(at)
        if code == "o":
            if speed > 0 and delay > 0:
                out.flush()
                time.sleep(delay / speed)
            out.write(str(data))
    out.flush()
