"""asciicast v2 recordings of sessions (`start --record`, `record on|off`, `replay`).

The file is what asciinema 2.x and `agg` read: a JSON header line, then one JSON array per
event, `[seconds, code, data]` with the codes asciicast v2 defines: `o` (output), `i` (input,
only when asked: input may hold secrets), `r` (resize, "COLSxROWS") and `m` (marker). v2 has
no exit event (v3's `x`), so the program's end is a last marker, "exited (code 7)".
Size-capped like every log: past the cap a last marker says so and recording stops.

A recording never stops the session: a write that fails (a full disk) stops the recording,
and `error` says why (the worker logs it and puts it in the session's record).
"""

from __future__ import annotations

import codecs
import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

log = logging.getLogger("agentty.worker")

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
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self.path = path
        self.error: str | None = None
        self._on_error = on_error
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
        if self._fd < 0:
            return  # stopped: closed, or a write failed
        data = (line + "\n").encode()
        if self._size + len(data) > MAX_CAST_BYTES:
            if not self.full:
                self.full = True
                note = json.dumps([self._now(), "m", "recording stopped: size cap reached"])
                self._append((note + "\n").encode())
            return
        self._append(data)

    def _append(self, data: bytes) -> None:
        """Write one whole line or none: a failed write is cut back to the last full line,
        so the file stays one JSON value per line."""
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._size)
            self._stop(exc)
            return
        self._size += len(data)

    def _stop(self, exc: OSError) -> None:
        """A write failed: the recording ends here; the session goes on."""
        self.error = f"{exc.strerror or exc} writing {self.path}; recording stopped"
        log.error("%s", self.error)
        self.close()
        if self._on_error is not None:
            self._on_error(self.error)

    def _now(self) -> float:
        return round(time.monotonic() - self.started, 6)

    def _event(self, code: str, data: str) -> None:
        self._write(json.dumps([self._now(), code, data], ensure_ascii=False))

    def output(self, data: bytes) -> None:
        text = self._decoder.decode(data)
        if text:
            self._event("o", text)

    def typed(self, data: bytes, label: str | None) -> None:
        """Input sent to the program: a marker named `label` (None: part of the input
        before it, like the Enter of `text --enter`) and, when asked, the bytes."""
        if self.markers and label is not None:
            self._event("m", label)
        if self.input:
            self._event("i", data.decode("utf-8", "replace"))

    def resize(self, cols: int, rows: int) -> None:
        self._event("r", f"{cols}x{rows}")

    def exited(self, how: str) -> None:
        """The program's end, as a marker: "exited (code 7)", "exited (signal SIGKILL)"."""
        self._event("m", f"exited ({how})")

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
            try:
                event = json.loads(line)
            except ValueError:
                continue  # a line cut short (by a full disk, in a file an older agentty wrote)
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
