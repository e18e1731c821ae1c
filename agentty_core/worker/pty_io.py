"""PTY I/O: reading the program's output into the emulator (in batches, inside the loop's
reader callback) and queueing its input without ever blocking the worker (R9).

Input larger than the queue comes as parts (see Client.text); a part waits until the
program has read enough for it to fit, and fails with `input_full` when the program reads
none of its input for INPUT_STALL seconds (or INPUT_WAIT pass)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import time

from agentty_core.worker.answers import RequestFailed
from agentty_core.worker.base import WorkerBase

log = logging.getLogger("agentty.worker")

READ_CHUNK = 1 << 16
READ_BATCH = 1 << 15  # fed to the emulator at once: big enough for bulk parsing, small enough
# that a request waiting behind a flood (it needs a few loop turns) is answered quickly
SMALL_READ = 1024  # a read shorter than this means the PTY had little to give
RAW_BUFFER = 1 << 20  # the tail of raw output kept for `get --raw`
INPUT_QUEUE = 1 << 20  # bytes queued for a program that is not reading
INPUT_STALL = 10.0  # a part of a large input fails once the program read nothing for this long
INPUT_WAIT = 60.0  # ... or once it waited this long in all (the client waits 90 s)
DRAIN_LIMIT = 1 << 20  # parsed at most for one wait's answer (a blocked program leaves ~64 KiB)


class PtyIO(WorkerBase):
    """The program's output into the emulator, its input out of the queue."""

    def _read_batch(self) -> tuple[bytes, bool]:
        """What the PTY has now, up to READ_BATCH, and whether it reached EOF. The tty layer
        hands out a few KiB per read; feeding the emulator one batch instead of each piece
        is what lets it take floods in bulk."""
        assert self.child is not None
        chunks: list[bytes] = []
        size = 0
        while size < READ_BATCH:
            try:
                chunk = os.read(self.child.fd, READ_CHUNK)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno != errno.EIO:
                    log.warning("PTY read failed: %s", exc)
                return b"".join(chunks), True
            if not chunk:
                return b"".join(chunks), True
            chunks.append(chunk)
            size += len(chunk)
            if len(chunk) < SMALL_READ:
                break  # a line or two: the tty had no more (asking again costs an EAGAIN)
        return b"".join(chunks), False

    def _on_readable(self) -> None:
        data, eof = self._read_batch()
        if data:
            self._take_output(data)
        if eof:
            self._on_pty_closed()

    def _drain_output(self) -> None:
        """Parse what the PTY holds right now, for a wait about to answer that the program
        reads (see WaitRegistry._reading). Waits are not checked from inside: the caller
        evaluates them next, and a check follows on the next turn for the other waits."""
        if self.child is None or self.pty_closed or self.draining:
            return
        seq = self.emu.seq
        taken = 0
        self.draining = True
        try:
            while taken < DRAIN_LIMIT:
                data, eof = self._read_batch()
                if data:
                    self._take_output(data)
                    taken += len(data)
                if eof:
                    self._on_pty_closed()
                    break
                if not data:
                    break
        finally:
            self.draining = False
        if self.emu.seq != seq:
            asyncio.get_running_loop().call_soon(self._check_waits)

    def _take_output(self, data: bytes) -> None:
        self.last_read = time.monotonic()
        self.raw += data
        if self.recorder is not None:
            self.recorder.output(data)
        if len(self.raw) > RAW_BUFFER:
            del self.raw[: len(self.raw) - RAW_BUFFER]
        seq = self.emu.seq
        replies = self.emu.feed(data)
        if replies:
            self._write(replies)
        if self.emu.seq != seq:
            self.last_change = time.monotonic()
            self.active_at = time.time()
            self._check_waits()
            self._schedule_push()

    def _on_pty_closed(self) -> None:
        if self.pty_closed or self.child is None:
            return
        self._close_pty()
        self._maybe_finalize()

    def _close_pty(self) -> None:
        """Stop watching the PTY: a hung-up PTY is readable forever (EIO), and a reader left
        on it would spin the loop until the worker exits."""
        self.pty_closed = True
        if self.child is None:
            return
        loop = asyncio.get_running_loop()
        loop.remove_reader(self.child.fd)
        if self.writer_armed:
            loop.remove_writer(self.child.fd)
            self.writer_armed = False
        if self.input_room is not None:
            self.input_room.set()  # a part waiting for room learns that the session ended

    def _write(self, data: bytes) -> None:
        """Queue input for the program; never blocks the worker (R9)."""
        if self.child is None or self.exit_status is not None or self.finalizing:
            raise self._ended()
        if len(self.pending_input) + len(data) > INPUT_QUEUE:
            raise RequestFailed(
                "input_full",
                f"input queue full ({len(self.pending_input)} bytes pending): "
                "the program is not reading its input",
            )
        self.pending_input += data
        self._flush_input()

    async def _room_for(self, size: int) -> None:
        """Wait until `size` more bytes fit the input queue (a part of a large input)."""
        started = time.monotonic()
        while len(self.pending_input) + size > INPUT_QUEUE:
            if self.child is None or self.exit_status is not None or self.finalizing:
                raise self._ended()
            now = time.monotonic()
            stalled = now - max(self.input_moved_at, started)
            if stalled >= INPUT_STALL or now - started >= INPUT_WAIT:
                raise RequestFailed(
                    "input_full",
                    f"the program is not reading its input ({len(self.pending_input)} bytes "
                    f"still queued; it read none for {stalled:.0f} s)"
                    if stalled >= INPUT_STALL
                    else f"the program reads its input too slowly ({len(self.pending_input)} "
                    f"bytes still queued after {INPUT_WAIT:g} s)",
                )
            if self.input_room is None:
                self.input_room = asyncio.Event()
            self.input_room.clear()
            wake = min(INPUT_STALL - stalled, INPUT_WAIT - (now - started))
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.input_room.wait(), max(wake, 0.01))

    def _flush_input(self) -> None:
        assert self.child is not None
        loop = asyncio.get_running_loop()
        before = len(self.pending_input)
        while self.pending_input:
            try:
                written = os.write(self.child.fd, self.pending_input[:READ_CHUNK])
            except BlockingIOError:
                break
            except OSError as exc:
                log.warning("PTY write failed: %s", exc)
                self.pending_input.clear()
                break
            del self.pending_input[:written]
        if len(self.pending_input) < before:
            self.input_moved_at = time.monotonic()
            if self.input_room is not None:
                self.input_room.set()
        if self.pending_input and not self.writer_armed and not self.pty_closed:
            loop.add_writer(self.child.fd, self._flush_input)
            self.writer_armed = True
        elif not self.pending_input and self.writer_armed:
            loop.remove_writer(self.child.fd)
            self.writer_armed = False
