"""PTY I/O: reading the program's output into the emulator (in batches, inside the loop's
reader callback) and queueing its input without ever blocking the worker (R9)."""

from __future__ import annotations

import asyncio
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
        self.pty_closed = True
        asyncio.get_running_loop().remove_reader(self.child.fd)
        self._maybe_finalize()

    def _write(self, data: bytes) -> None:
        """Queue input for the program; never blocks the worker (R9)."""
        if self.child is None or self.exit_status is not None or self.finalizing:
            raise RequestFailed("exited", f"session {self.id} has exited")
        if len(self.pending_input) + len(data) > INPUT_QUEUE:
            raise RequestFailed(
                "input_full",
                f"input queue full ({len(self.pending_input)} bytes pending): "
                "the program is not reading its input",
            )
        self.pending_input += data
        self._flush_input()

    def _flush_input(self) -> None:
        assert self.child is not None
        loop = asyncio.get_running_loop()
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
        if self.pending_input and not self.writer_armed:
            loop.add_writer(self.child.fd, self._flush_input)
            self.writer_armed = True
        elif not self.pending_input and self.writer_armed:
            loop.remove_writer(self.child.fd)
            self.writer_armed = False
