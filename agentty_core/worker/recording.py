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

from agentty_core.terminal_guard import TerminalGuard

log = logging.getLogger("agentty.worker")

MAX_CAST_BYTES = 64 << 20
CAP_REACHED = f"size cap ({MAX_CAST_BYTES >> 20} MiB) reached"
# Read from a file to replay: a header line is small (asciinema's are well under 4 KiB); an
# event line, no longer than a whole recording (an output event of the recorder is a read of
# the PTY, 100 KiB at most, six times as long escaped). Past either, a line is not read in.
MAX_HEADER_CHARS = 64 << 10
MAX_EVENT_CHARS = MAX_CAST_BYTES
# `record on` appending: the last event's time is looked for in the file's last TAIL bytes,
# then in four times as many while none is found there, up to TAIL_MOST bytes and
# TAIL_LINES lines (the recorder writes nothing but events after the header: a file whose
# last lines are none was edited by hand).
TAIL = 64 << 10
TAIL_MOST = 1 << 20
TAIL_LINES = 1000


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
        self._begun = False  # its first write (header, or the size when appending) went in
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
        """The header of a new recording, or (appending) the time to go on from and the
        terminal's size: either is written at once, so that a recording that cannot be
        written is refused by `record on` (`error`)."""
        st = os.fstat(self._fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(self.path))
        self._size = st.st_size
        if self._size >= MAX_CAST_BYTES:
            self._stop(CAP_REACHED)
        elif self._size == 0:
            header = {
                "version": 2,
                "width": cols,
                "height": rows,
                "timestamp": int(time.time()),
                "env": {k: v for k, v in (env or {}).items() if k in ("TERM", "SHELL")},
            }
            self._write(json.dumps(header))
        else:
            # Appending after `record off`/`on`: times continue from the last event, read
            # from the file's end (the worker's loop waits on this: never the whole file).
            self.started -= _last_time(self._fd, self._size)
            # The size now (it may have changed while not recording), written at once: a
            # disk too full to append to fails here, not at the first output.
            self.resize(cols, rows)
        self._begun = True

    def _write(self, line: str) -> None:
        if self._fd < 0:
            return  # stopped: closed, or a write failed
        data = (line + "\n").encode()
        if self._size + len(data) > MAX_CAST_BYTES:  # (the marker may go past it)
            note = json.dumps([self._now(), "m", "recording stopped: size cap reached"])
            self._append((note + "\n").encode())
            self._stop(CAP_REACHED)
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
            self._stop(exc.strerror or str(exc))
            return
        self._size += len(data)

    def _stop(self, why: str) -> None:
        """A write failed, or the cap is reached: the recording ends here (`error` says why,
        as `recordingError` in the record); the session goes on."""
        if self._fd < 0:
            return  # (the marker's write failed: stopped then)
        then = "recording stopped" if self._begun else "not recording"
        self.error = f"{why} writing {self.path}; {then}"
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


def _last_time(fd: int, size: int) -> float:
    """The last event's time, from the file's tail: TAIL bytes, then the lines before them
    (four times as many bytes each time, up to TAIL_MOST) only while no event is found.
    Lines that are no event, and times that are none (no float holds them, infinite, NaN: a
    file edited by hand), are passed over, or every new time would be one (not JSON); none
    found: 0."""
    window, end = TAIL, size  # (lines from `end` on are looked at already)
    looked = 0
    while True:
        start = max(0, size - window)
        lines = os.pread(fd, end - start, start).split(b"\n")
        cut = lines.pop(0) if start > 0 else b""  # (its start is before `start`: next time)
        for line in reversed(lines[-(TAIL_LINES - looked) :]):
            at = _event_time(line)
            if at is not None:
                return at
        looked += len(lines)
        if start == 0 or window >= TAIL_MOST or looked >= TAIL_LINES:
            return 0.0
        window, end = window * 4, start + len(cut)


def _event_time(line: bytes) -> float | None:
    if not line.startswith(b"[") or not line.rstrip().endswith(b"]"):  # (not worth parsing)
        return None
    try:
        event = json.loads(line)
        if not isinstance(event, list) or len(event) != 3:
            return None
        at = _seconds(event[0])
    except (ValueError, RecursionError):
        return None
    return at if math.isfinite(at) else None


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
    # Bytes that are no UTF-8 (a file edited by hand, or cut) are read as U+FFFD: one such
    # byte stopped a replay at it, the rest of the file unplayed.
    return open(fd, encoding="utf-8", errors="replace")


def read_header(cast: TextIO) -> dict[str, object]:
    line = cast.readline(MAX_HEADER_CHARS + 1)  # (a file of one endless line: not read in)
    try:
        header = json.loads(line) if len(line) <= MAX_HEADER_CHARS else None
    except (ValueError, RecursionError):  # (nested past the parser's depth, say)
        header = None
    if not isinstance(header, dict) or header.get("version") != 2:
        raise ValueError("not an asciicast v2 file")
    return header


def events(cast: TextIO) -> Iterator[list[object]]:
    """The events after the header line (`cast` is read from where it is). A line that is
    none is skipped, one longer than MAX_EVENT_CHARS too (read past, never held whole)."""
    for line in _lines(cast, MAX_EVENT_CHARS):
        try:
            event = json.loads(line)
        except (ValueError, RecursionError):
            continue  # a line cut short (by a full disk, in a file an older agentty wrote)
        if isinstance(event, list) and len(event) == 3:
            yield event


def _lines(cast: TextIO, most: int) -> Iterator[str]:
    """The lines of `cast` no longer than `most` characters; longer ones are passed over."""
    while line := cast.readline(most):
        if len(line) < most or line.endswith("\n"):
            yield line
            continue
        while (rest := cast.readline(most)) and not rest.endswith("\n"):
            pass  # the rest of a line too long: read past


def replay(cast: TextIO, speed: float = 1.0, max_idle: float = 2.0) -> None:
    """Write the recorded output to this terminal with its timing (idle gaps capped), less
    what would make the terminal act besides showing it (`TerminalGuard`); at the end, even
    an interrupted one, the modes the recording left on are turned off."""
    read_header(cast)
    out = sys.stdout
    guard = TerminalGuard()
    previous = 0.0
    try:
        for at, code, data in events(cast):
            try:
                seconds = _seconds(at)
            except ValueError:  # a time no float holds: passed over, as a line no event is
                continue
            if not math.isfinite(seconds):  # played at once, its time no clock's (NaN lost
                seconds = previous  # the next delay, and infinity paused for max_idle)
            delay = min(max(0.0, seconds - previous), max_idle)
            previous = seconds
            if code == "o" and isinstance(data, str):  # (other data: a hand-made file's)
                if speed > 0 and delay > 0:
                    out.flush()
                    time.sleep(delay / speed)
                shown = guard.feed(data)
                try:
                    out.write(shown)
                except UnicodeEncodeError:  # a lone surrogate (legal JSON), or a C locale
                    out.write(
                        shown.encode(out.encoding or "utf-8", "replace").decode(
                            out.encoding or "utf-8"
                        )
                    )
        out.flush()
    finally:
        _restore(out, guard.finish())


def _restore(out: TextIO, restore: str) -> None:
    """Write `restore` where the terminal is: our stdout or, when that fails (a reader of a
    pipe gone), stderr if it is a terminal."""
    if not restore:
        return
    try:
        out.write(restore)
        out.flush()
    except Exception:  # (the CLI's stdout raises its own error where the stream failed)
        err = sys.stderr
        with contextlib.suppress(Exception):
            if err is not None and err.isatty():
                err.write(restore)
                err.flush()
