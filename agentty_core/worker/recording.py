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
import errno
import json
import logging
import math
import os
import stat
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

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
        # O_NONBLOCK: a FIFO in its place would hold the open (the worker's loop with it)
        # until somebody reads it; opened at once, it is refused below, as a symlink is.
        flags = os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
        self._fd = os.open(path, flags | os.O_NONBLOCK, 0o600)
        try:
            self._begin(cols, rows, env)
        except BaseException:
            self.close()
            raise

    def _begin(self, cols: int, rows: int, env: dict[str, str] | None) -> None:
        """The header of a new recording, or (appending) the time to go on from."""
        st = os.fstat(self._fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(self.path))
        self._size = st.st_size
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
        elif self._size < MAX_CAST_BYTES:  # (past it, nothing more is written)
            # Appending after `record off`/`on`: times continue from the last event.
            with open(os.dup(self._fd), encoding="utf-8", errors="replace") as f:
                f.seek(0)  # (the offset is shared with ours; our writes append all the same)
                self.started -= _last_time(f)

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


def _last_time(cast: TextIO) -> float:
    """The last event's time; times that are none (no float holds them, infinite, NaN: a
    file edited by hand) are passed over, or every new time would be one (not JSON)."""
    last = 0.0
    for event in events(cast):
        with contextlib.suppress(ValueError):
            at = _seconds(event[0])
            if math.isfinite(at):
                last = at
    return last


def _seconds(value: object) -> float:
    try:
        return float(value) if isinstance(value, (int, float)) else 0.0
    except OverflowError:  # an integer no float holds: a time that cannot be
        raise ValueError(f"a time out of range: {str(value)[:20]}...") from None


def open_cast(path: Path, *, follow: bool = False) -> TextIO:
    """A recording to read: a session's, in the home (`follow` False), opened as every
    reader of the home opens its files (`open_private_file`: no symlink followed, no FIFO
    waited on), or a file the caller named (`follow`: any path to a regular file)."""
    if follow:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise ValueError(f"{path} is not a regular file")
    else:
        from agentty_core.state.records import open_private_file

        found = open_private_file(path)
        if found is None:
            raise FileNotFoundError(errno.ENOENT, "no such file", str(path))
        fd = found
    return open(fd, encoding="utf-8")


def read_header(cast: TextIO) -> dict[str, object]:
    try:
        header = json.loads(cast.readline())
    except (ValueError, RecursionError):  # (nested past the parser's depth, say)
        header = None
    if not isinstance(header, dict) or header.get("version") != 2:
        raise ValueError("not an asciicast v2 file")
    return header


def events(cast: TextIO) -> Iterator[list[object]]:
    """The events after the header line (`cast` is read from where it is)."""
    for line in cast:
        try:
            event = json.loads(line)
        except (ValueError, RecursionError):
            continue  # a line cut short (by a full disk, in a file an older agentty wrote)
        if isinstance(event, list) and len(event) == 3:
            yield event


def replay(cast: TextIO, speed: float = 1.0, max_idle: float = 2.0) -> None:
    """Write the recorded output to this terminal with its timing (idle gaps capped)."""
    read_header(cast)
    out = sys.stdout
    previous = 0.0
    for at, code, data in events(cast):
        delay = min(max(0.0, _seconds(at) - previous), max_idle)
        previous = _seconds(at)
        if code == "o":
            if speed > 0 and delay > 0:
                out.flush()
                time.sleep(delay / speed)
            out.write(str(data))
    out.flush()
