"""The session worker: one detached process per session.

It owns the program's PTY, the terminal emulator and the session's Unix socket. Its order
of start-up is what makes "no orphan ever" true (D6): umask, signal handlers and the child
subreaper come first, then the intent record, then the spawn, then the socket, then the
running record, and only then the `ready` line on the status pipe that `start` waits for.
Whatever ends the worker (SIGTERM, an exception, a failed state write) ends the program's
process tree first. When the program exits, the worker saves the final screen next to its
log, records the exit, removes its socket and exits.

Started by worker_spawn, which runs agentty_core.worker.main (see that module for the
process set-up).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import errno
import json
import logging
import os
import signal
import stat
import time
import traceback
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, ClassVar, TypeAlias, cast

from agentty_core import failpoints, keys, protocol
from agentty_core.emulator.interface import create_emulator
from agentty_core.errors import EXIT_TIMEOUT, EXIT_USAGE, AgenttyError, InvalidKey, SpawnError
from agentty_core.ipc.server import Peer, Server
from agentty_core.paths import Home
from agentty_core.proc import identity, inputstate
from agentty_core.proc.ptyhost import PtyChild, become_subreaper, spawn
from agentty_core.protocol import BadRequest, JSONObject
from agentty_core.state.records import RawRecord as Record
from agentty_core.state.store import StateStore, atomic_write, iso, now_iso
from agentty_core.worker.recording import Recorder
from agentty_core.worker.waits import Fired, WaitSpec, evaluate, parse_wait

if TYPE_CHECKING:
    import psutil

    from agentty_core.proc.killtree import KillResult

log = logging.getLogger("agentty.worker")

READ_CHUNK = 1 << 16
READ_BATCH = 1 << 15  # fed to the emulator at once: big enough for bulk parsing, small enough
# that a request waiting behind a flood (it needs a few loop turns) is answered quickly
SMALL_READ = 1024  # a read shorter than this means the PTY had little to give
RAW_BUFFER = 1 << 20  # the tail of raw output kept for `get --raw`
INPUT_QUEUE = 1 << 20  # bytes queued for a program that is not reading
MAX_CONNECTIONS = 64
PUSH_BACKLOG = 1 << 18  # unsent bytes after which a subscriber's frames are skipped
IDLE_CONNECTION = 600.0
# After the program exited, its last output is read until the PTY reports EOF. A job it left
# in the background may hold the PTY open forever: then the PTY counts as closed after
# EXIT_DRAIN of quiet. With nobody left, EOF comes once everything is read, however long a
# loaded machine takes to hand the rest over; EXIT_DRAIN_MAX of quiet is the backstop.
EXIT_DRAIN = 0.25
EXIT_DRAIN_MAX = 5.0
ENTER_GAP = 0.05  # between text and its Enter, so TUIs don't take the Enter as pasted
INPUT_POLL = 0.02
SIGNALS = {
    name: getattr(signal, f"SIG{name}")
    for name in ("INT", "TERM", "HUP", "QUIT", "USR1", "USR2", "WINCH", "CONT", "STOP", "KILL")
}


Outcome: TypeAlias = "JSONObject | BaseException"


class Later:
    """An answer given later by a direct call. A wait fires inside the callback that read
    the program's output, and its answer goes out in that same turn of the loop; through
    asyncio futures it would take a turn per future (a tenth of a round trip)."""

    __slots__ = ("_receivers", "outcome")

    def __init__(self) -> None:
        self.outcome: Outcome | None = None
        self._receivers: list[Callable[[Outcome], None]] = []

    def done(self) -> bool:
        return self.outcome is not None

    def resolve(self, outcome: Outcome) -> None:
        """The first outcome counts; later ones (a timer racing the output) are dropped."""
        if self.outcome is None:
            self.outcome = outcome
            receivers, self._receivers = self._receivers, []
            for receiver in receivers:
                receiver(outcome)

    def then(self, receiver: Callable[[Outcome], None]) -> None:
        if self.outcome is None:
            self._receivers.append(receiver)
        else:
            receiver(self.outcome)


# What a request handler gives: its result now, a Later, or an awaitable of it.
Answer: TypeAlias = "JSONObject | Later | Awaitable[JSONObject]"


class RequestFailed(Exception):
    """A request the worker refuses, with the protocol error code and CLI exit code."""

    def __init__(self, code: str, message: str, exit_code: int = 1, **extra: object) -> None:
        super().__init__(message)
        self.code = code
        self.exit_code = exit_code
        self.extra = extra


class Worker:
    def __init__(self, spec: Record, home: Home, status_fd: int | None) -> None:
        self.spec = spec
        self.id = str(spec["id"])
        self.home = home
        self.store = StateStore(home, lean=True)  # see StateStore: filelock stays out
        self.status_fd = status_fd
        record = spec.get("record")
        self.record: Record = dict(record) if isinstance(record, dict) else {}
        cols, rows = int(spec["cols"]), int(spec["rows"])  # type: ignore[call-overload]  # validated by the launcher
        self.emu, self.emulator_name = create_emulator(cols, rows)
        self.child: PtyChild | None = None
        self.server: Server | None = None
        self.raw = bytearray()
        self.pending_input = bytearray()
        self.writer_armed = False
        self.exit_status: int | None = None
        self.pty_closed = False
        self.finalized = asyncio.Event()
        self.finalizing = False
        self.kill_task: asyncio.Task[KillResult] | None = None
        self.last_change = self.last_read = time.monotonic()
        self.active_at = time.time()
        self.waits: dict[Later, WaitSpec] = {}
        self.input_poller: asyncio.Task[None] | None = None
        self.stable_timer: asyncio.TimerHandle | None = None
        # Subscribed connections, and whether one skipped a push (it then gets every row).
        self.subscribers: dict[Peer, bool] = {}
        self.push_handle: asyncio.TimerHandle | None = None
        self.recorder: Recorder | None = None

    # ----------------------------------------------------------------- start-up

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        failpoints.hit("worker.before_handlers")
        # The worker's own files are private; the program gets the umask `start` ran with.
        program_umask = os.umask(0o077)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_terminate, sig)
        loop.add_signal_handler(signal.SIGCHLD, self._reap)
        loop.add_signal_handler(signal.SIGUSR1, self._on_rebind)
        become_subreaper()
        worker_pid = os.getpid()
        self._update_record(
            workerPid=worker_pid,
            workerStart=identity.start_token(worker_pid),
            workerCreateTime=identity.create_time(worker_pid),
        )
        failpoints.hit("worker.after_intent")
        try:
            self.child = spawn(
                [str(a) for a in cast(list[str], self.spec["argv"])],
                cwd=str(self.spec["cwd"]),
                env=cast(dict[str, str], self.spec["env"]),
                cols=self.emu.cols,
                rows=self.emu.rows,
                umask=program_umask,
            )
        except SpawnError as exc:
            self._report({"ok": False, "error": exc.message, "exit_code": exc.exit_code})
            self._update_record(status="failed", error=exc.message, endedAt=now_iso())
            return 1
        failpoints.hit("worker.after_spawn")
        wanted = self.spec.get("record_cast")
        if isinstance(wanted, dict):
            self._start_recording(wanted.get("input") is True, wanted.get("markers") is True)
        pid = self.child.pid
        loop.add_reader(self.child.fd, self._on_readable)
        self._bind()
        failpoints.hit("worker.after_bind")
        self._update_record(
            status="running",
            emulator=self.emulator_name,
            pid=pid,
            pidStart=identity.start_token(pid),
            createTime=identity.create_time(pid),
        )
        failpoints.hit("worker.before_ready")
        self._report({"ok": True, "pid": pid, "workerPid": worker_pid})
        self._reap()  # the program may have exited before the handler was armed
        await self.finalized.wait()
        # Let the answer to a `kill` go out, then close every connection so that no handler
        # is still running (and cancelled mid-read) when the loop shuts down.
        await asyncio.sleep(0.05)
        if self.server is not None:
            self.server.close_all()
        await asyncio.sleep(0)
        return 0

    def _report(self, message: JSONObject) -> None:
        """One line on the status pipe, then close it: `start` is waiting for it."""
        if self.status_fd is None:
            return
        with contextlib.suppress(OSError):
            os.write(self.status_fd, json.dumps(message).encode() + b"\n")
        with contextlib.suppress(OSError):
            os.close(self.status_fd)
        self.status_fd = None

    def _update_record(self, **fields: object) -> None:
        self.record.update(fields)
        self.store.update_or_restore(self.id, self.record, **fields)

    def _bind(self) -> None:
        path = self.home.socket_path(self.id)
        self.home.ensure_socket_dir()
        with contextlib.suppress(FileNotFoundError):
            # Only a stale socket of ours is replaced; anything else at the path (a file, a
            # symlink) makes the bind fail loudly instead of being followed or removed.
            st = os.lstat(path)
            if stat.S_ISSOCK(st.st_mode) and st.st_uid == os.getuid():
                path.unlink()
        old = self.server
        self.server = Server(
            str(path),
            self._on_request,
            max_connections=MAX_CONNECTIONS,
            idle_timeout=IDLE_CONNECTION,
        )
        if old is not None:
            self.server.adopt(old)
        os.chmod(path, 0o600)
        self.socket_inode = os.lstat(path).st_ino

    def _on_rebind(self) -> None:
        """SIGUSR1: re-create a socket that was deleted under us (R5)."""
        path = self.home.socket_path(self.id)
        try:
            if os.lstat(path).st_ino == self.socket_inode:
                return
        except FileNotFoundError:
            pass
        log.warning("socket %s was removed; re-creating it", path)
        if self.server is not None:
            self.server.close()
        try:
            self._bind()
        except OSError as exc:
            log.error("cannot re-create the socket: %s", exc)

    # ----------------------------------------------------------------- PTY I/O

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

    # ----------------------------------------------------------------- exit

    def _reap(self) -> None:
        """SIGCHLD: reap every exited child (we are a subreaper); note the program's status."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            if self.child is not None and pid == self.child.pid:
                self.exit_status = status
                # The PTY may still hold output (read it all: the final screen must be
                # complete), and a background job may keep it open (then stop once quiet).
                self._drain_after_exit()
                self._maybe_finalize()

    def _drain_after_exit(self) -> None:
        if self.pty_closed:
            return
        quiet = time.monotonic() - self.last_read
        if quiet >= EXIT_DRAIN and (quiet >= EXIT_DRAIN_MAX or self._anyone_left()):
            self._on_pty_closed()
        else:
            delay = max(EXIT_DRAIN - quiet, 0.05)
            asyncio.get_running_loop().call_later(delay, self._drain_after_exit)

    def _anyone_left(self) -> bool:
        from agentty_core.proc.killtree import (
            alive,  # psutil: loaded only when a program has exited
        )

        return bool(alive(self._session_processes()))

    def _maybe_finalize(self) -> None:
        if self.exit_status is None or not self.pty_closed or self.finalizing:
            return
        if self.kill_task is None:
            asyncio.get_running_loop().create_task(self._finalize(reap_leftovers=True))

    def _exit_fields(self) -> dict[str, object]:
        status = self.exit_status
        if status is None:
            return {"exitCode": None, "signal": None}
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            return {"exitCode": 128 + sig, "signal": signal.Signals(sig).name}
        return {"exitCode": os.waitstatus_to_exitcode(status), "signal": None}

    async def _finalize(self, *, reap_leftovers: bool) -> None:
        if self.finalizing:
            return
        self.finalizing = True
        if reap_leftovers:
            # Background jobs the program left behind belong to the session: end them.
            from agentty_core.proc.killtree import ladder, run_async  # psutil: loaded only to kill

            await run_async(ladder(self._session_processes, grace=0.5))
        snapshot = self.screen_payload(scrollback=True)
        snapshot.update(self._exit_fields(), exited=True, input=inputstate.exited())
        try:
            atomic_write(self.home.final_path(self.id), json.dumps(snapshot).encode())
        except OSError as exc:
            log.error("cannot save the final screen: %s", exc)
        if self.recorder is not None:
            if self.exit_status is not None:
                self.recorder.exit(os.waitstatus_to_exitcode(self.exit_status))
            self.recorder.close()
        fields = {**self._exit_fields(), "status": "exited", "endedAt": now_iso()}
        try:
            self._update_record(lastActiveAt=iso(self.active_at), **fields)
        except AgenttyError as exc:
            log.error("cannot record the exit: %s", exc)
        self._check_waits()
        for later in list(self.waits):
            later.resolve(RequestFailed("exited", self._exited_message()))
        for peer in list(self.subscribers):
            peer.finish()
        if self.server is not None:
            self.server.close()
        with contextlib.suppress(OSError, AgenttyError):
            path = self.home.socket_path(self.id)
            if os.lstat(path).st_ino == getattr(self, "socket_inode", None):
                path.unlink()
        log.info("session %s ended: %s", self.id, fields)
        self.finalized.set()

    def _exited_message(self) -> str:
        fields = self._exit_fields()
        if fields["signal"]:
            return f"session {self.id} exited (signal {fields['signal']})"
        return f"session {self.id} exited (code {fields['exitCode']})"

    def _session_processes(self) -> list[psutil.Process]:
        """Everything of this session: its group and session, the foreground group, and
        every descendant of the worker (which, as subreaper, inherits double-forked ones)."""
        import psutil

        from agentty_core.proc.killtree import group_members

        procs: dict[int, psutil.Process] = {}
        if self.child is not None:
            for proc in group_members(self.child.pid):
                procs[proc.pid] = proc
            if not self.pty_closed:
                with contextlib.suppress(OSError):
                    fg = os.tcgetpgrp(self.child.fd)  # 0 until the child claims the tty
                    if fg > 1 and fg != self.child.pid:
                        procs.update((p.pid, p) for p in group_members(fg))
        with contextlib.suppress(psutil.Error):
            for proc in psutil.Process().children(recursive=True):
                procs[proc.pid] = proc
        procs.pop(os.getpid(), None)
        return list(procs.values())

    async def kill(self, grace: float) -> KillResult:
        if self.kill_task is None:
            self.kill_task = asyncio.get_running_loop().create_task(self._kill(grace))
        return await asyncio.shield(self.kill_task)

    async def _kill(self, grace: float) -> KillResult:
        from agentty_core.proc.killtree import ladder, run_async

        result = await run_async(ladder(self._session_processes, grace=grace))
        if result.survivors:
            return result
        deadline = time.monotonic() + 2.0
        while self.exit_status is None and time.monotonic() < deadline:
            self._reap()
            await asyncio.sleep(0.01)
        self.pty_closed = True
        await self._finalize(reap_leftovers=False)
        return result

    def _on_terminate(self, sig: int) -> None:
        log.info("received %s: ending the session", signal.Signals(sig).name)
        asyncio.get_running_loop().create_task(self.kill(grace=1.0))

    # ----------------------------------------------------------------- screen

    def screen_payload(
        self,
        *,
        scrollback: bool = False,
        ansi: bool = False,
        raw_bytes: int | None = None,
        last_lines: int | None = None,
        input: bool = True,
    ) -> JSONObject:
        """The screen as the protocol sends it. `input=False` skips the input-state probe
        (a few /proc reads, ~0.2 ms): wait answers carry it only when they waited for it."""
        emu = self.emu
        row, col = emu.cursor
        payload: JSONObject = {
            "id": self.id,
            "lines": emu.lines(),
            "cursor": {"row": row, "col": col, "visible": emu.cursor_visible},
            "size": {"cols": emu.cols, "rows": emu.rows},
            "seq": emu.seq,
            "title": emu.title,
            "altScreen": emu.alt_screen,
            "modes": emu.modes,
            "exited": self.exit_status is not None,
            **self._exit_fields(),
        }
        if input:
            payload["input"] = self.input_state()
        if scrollback:
            payload["scrollback"] = emu.scrollback()
        if ansi:
            payload["ansi"] = emu.ansi_lines()
        if last_lines is not None:
            text = emu.scrollback() + emu.lines()
            while text and not text[-1]:
                text.pop()
            payload["lines"] = text[-last_lines:] if last_lines else []
        if raw_bytes is not None:
            tail = bytes(self.raw[-raw_bytes:]) if raw_bytes else b""
            payload["raw"] = tail.decode("utf-8", "replace")
            payload["rawBase64"] = base64.b64encode(tail).decode()
        return payload

    def input_state(self) -> inputstate.InputState:
        if self.child is None or self.exit_status is not None or self.pty_closed:
            return inputstate.exited()
        return inputstate.probe(self.child.fd, self.child.tty_name)

    # ----------------------------------------------------------------- waits

    def _check_waits(self) -> None:
        if not self.waits:
            return
        now = time.monotonic()
        reading: list[bool] = []  # probed once, when a wait needs it
        next_stable: float | None = None
        for later, spec in list(self.waits.items()):
            if later.done():
                continue
            fired = self._evaluate(spec, now, reading)
            if fired is not None:
                try:
                    answer: Outcome = self._wait_result(spec, fired)
                except Exception as exc:  # this wait's answer fails, not the output path
                    answer = exc
                later.resolve(answer)
            elif spec.stable_ms is not None:
                due = self.last_change + spec.stable_ms / 1000
                next_stable = due if next_stable is None else min(next_stable, due)
        if self.stable_timer is not None:
            self.stable_timer.cancel()
            self.stable_timer = None
        if next_stable is not None:
            loop = asyncio.get_running_loop()
            self.stable_timer = loop.call_at(
                loop.time() + max(0.0, next_stable - now) + 0.001, self._check_waits
            )

    def _evaluate(self, spec: WaitSpec, now: float, reading: list[bool]) -> Fired | None:
        # "Exited" means the program is gone *and* its last output was read: a wait for the
        # exit must see the final screen, not whatever was parsed when SIGCHLD arrived.
        exited = self.exit_status is not None and self.pty_closed
        if spec.input and not reading:
            reading.append(self.input_state()["state"] == "reading")
        idle_ms = (now - self.last_change) * 1000
        return evaluate(
            spec, self.emu, exited=exited, idle_ms=idle_ms, reading=bool(reading and reading[0])
        )

    async def _poll_input(self) -> None:
        while any(spec.input for spec in self.waits.values()):
            self._check_waits()
            await asyncio.sleep(INPUT_POLL)
        self.input_poller = None

    def wait(self, spec: WaitSpec) -> JSONObject | Later:
        """The answer now if the condition already holds (the common case for an agent that
        waits right after typing a fast program's input), else a Later for it."""
        fired = self._evaluate(spec, time.monotonic(), [])
        if fired is not None:
            return self._wait_result(spec, fired)
        later = Later()
        self.waits[later] = spec
        timer = asyncio.get_running_loop().call_later(
            spec.timeout, self._wait_timed_out, later, spec
        )

        def forget(_outcome: Outcome) -> None:
            timer.cancel()
            self.waits.pop(later, None)

        later.then(forget)
        self._check_waits()  # arms the timer of a `stable` wait
        if spec.input and self.input_poller is None:
            self.input_poller = asyncio.get_running_loop().create_task(self._poll_input())
        return later

    def _wait_timed_out(self, later: Later, spec: WaitSpec) -> None:
        later.resolve(
            RequestFailed(
                "timeout",
                f"timed out after {spec.timeout:g}s waiting for {spec.describe()}",
                exit_code=EXIT_TIMEOUT,
                screen=self.screen_payload(),
            )
        )

    def _wait_result(self, spec: WaitSpec, fired: Fired) -> JSONObject:
        result = self.screen_payload(scrollback=spec.scrollback, input=spec.input)
        result["fired"] = fired.condition
        result["elapsed_ms"] = round((time.monotonic() - spec.started) * 1000, 3)
        if fired.match is not None:
            result["match"] = {"row": fired.match[0], "col": fired.match[1]}
        return result

    # ----------------------------------------------------------------- subscriptions

    def _schedule_push(self) -> None:
        """Coalesce screen pushes to at most ~30 per second per worker."""
        if not self.subscribers or self.push_handle is not None:
            return
        self.push_handle = asyncio.get_running_loop().call_later(1 / 30, self._push)

    def _push(self) -> None:
        self.push_handle = None
        rows = sorted(self.emu.dirty_rows())
        line = protocol.encode(self.screen_event(rows))
        full: bytes | None = None
        # A copy: a send that fails closes the peer, which unsubscribes it.
        for peer, skipped in list(self.subscribers.items()):
            if peer.closed:
                continue
            if peer.unsent > PUSH_BACKLOG:
                # A slow subscriber skips frames rather than growing memory; since frames
                # carry only changed rows, its next one carries them all.
                self.subscribers[peer] = True
            elif skipped:
                if full is None:
                    full = protocol.encode(self.screen_event(list(range(self.emu.rows))))
                peer.send(full)
                self.subscribers[peer] = False
            else:
                peer.send(line)

    def screen_event(self, rows: list[int]) -> JSONObject:
        row, col = self.emu.cursor
        return {
            "event": "screen",
            "seq": self.emu.seq,
            "size": {"cols": self.emu.cols, "rows": self.emu.rows},
            "cursor": {"row": row, "col": col, "visible": self.emu.cursor_visible},
            "title": self.emu.title,
            "rows": {str(r): [list(run) for run in self.emu.row_runs(r)] for r in rows},
        }

    # ----------------------------------------------------------------- requests

    def _on_request(self, peer: Peer, line: bytes) -> None:
        """Answer one request line: at once when the handler can, else when its answer is
        ready (the connection's next requests wait until then)."""
        try:
            message = protocol.decode_line(line)
            method = message.get("method")
            params = message.get("params", {})
            if not isinstance(method, str) or not isinstance(params, dict):
                raise BadRequest("a request needs a string 'method' and an object 'params'")
            if method == "subscribe":
                self._subscribe(peer)
                return
            answer = self._answer(method, params)
            if isinstance(answer, dict):
                peer.send(protocol.ok(answer))
                return
        except Exception as exc:
            peer.send(self._error_response(exc))
            return
        peer.busy = True
        if isinstance(answer, Later):
            answer.then(lambda outcome: self._answer_later(peer, outcome, defer_resume=True))
            return
        future = asyncio.ensure_future(answer)
        future.add_done_callback(lambda done: self._answer_done(peer, done))

    def _answer_done(self, peer: Peer, done: asyncio.Future[JSONObject]) -> None:
        if done.cancelled():
            peer.close()  # the loop is shutting down; the connection just ends
            return
        exc = done.exception()
        self._answer_later(peer, done.result() if exc is None else exc)

    def _answer_later(self, peer: Peer, outcome: Outcome, *, defer_resume: bool = False) -> None:
        """Send a pending request's answer. A Later resolves in the middle of other work (the
        output callback, a wait check): the requests queued behind it then wait for the next
        turn of the loop instead of running inside that work."""
        try:
            if isinstance(outcome, BaseException):
                peer.send(self._error_response(outcome))
            else:
                peer.send(protocol.ok(outcome))
        except Exception as failure:  # an answer that cannot be encoded, say
            peer.send(self._error_response(failure))
        finally:
            if defer_resume:
                asyncio.get_running_loop().call_soon(peer.resume)
            else:
                peer.resume()

    @staticmethod
    def _error_response(exc: BaseException) -> bytes:
        if isinstance(exc, BadRequest):
            return protocol.error(exc.code, str(exc), exit_code=EXIT_USAGE)
        if isinstance(exc, InvalidKey):
            return protocol.error("invalid_key", str(exc), exit_code=EXIT_USAGE)
        if isinstance(exc, RequestFailed):
            return protocol.error(exc.code, str(exc), exit_code=exc.exit_code, **exc.extra)
        log.error(
            "request failed:\n%s",
            "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
        )
        return protocol.error("internal", f"worker error: {exc}")

    def _subscribe(self, peer: Peer) -> None:
        """From now on the connection carries screen events, starting with the whole screen."""
        peer.subscribed = True  # no more requests on this connection
        self.subscribers[peer] = False
        peer.on_close.append(lambda: self._unsubscribe(peer))
        peer.send(protocol.encode(self.screen_event(list(range(self.emu.rows)))))

    def _unsubscribe(self, peer: Peer) -> None:
        self.subscribers.pop(peer, None)

    def _answer(self, method: str, params: JSONObject) -> Answer:
        handler = self.handlers.get(method)
        if handler is None:
            raise BadRequest(f"unknown method {method!r}", "unknown_method")
        return handler(self, params)

    async def dispatch(self, method: str, params: JSONObject) -> JSONObject:
        """One request's result (or its exception), whichever way its handler answers."""
        answer = self._answer(method, params)
        if isinstance(answer, dict):
            return answer
        if isinstance(answer, Later):
            future: asyncio.Future[JSONObject] = asyncio.get_running_loop().create_future()

            def settle(outcome: Outcome) -> None:
                if future.done():
                    return
                if isinstance(outcome, BaseException):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)

            answer.then(settle)
            return await future
        return await answer

    def _ping(self, params: JSONObject) -> JSONObject:
        return {"pong": True, "pid": os.getpid(), "seq": self.emu.seq}

    def _info(self, params: JSONObject) -> JSONObject:
        record = dict(self.record, lastActiveAt=iso(self.active_at))
        record.update(input=self.input_state(), seq=self.emu.seq)
        return {"record": record}

    def _get(self, params: JSONObject) -> JSONObject:
        raw_bytes = _int_param(params, "bytes", 0, RAW_BUFFER, default=None)
        if params.get("raw") is True and raw_bytes is None:
            raw_bytes = 4096
        return self.screen_payload(
            scrollback=params.get("scrollback") is True,
            ansi=params.get("ansi") is True,
            raw_bytes=raw_bytes,
            last_lines=_int_param(params, "lines", 0, 1_000_000, default=None),
        )

    def _text(self, params: JSONObject) -> Answer:
        if "data_b64" in params:
            try:
                data = base64.b64decode(str(params["data_b64"]), validate=True)
            except ValueError:
                raise BadRequest("data_b64 is not valid base64") from None
        elif isinstance(params.get("data"), str):
            data = str(params["data"]).encode("utf-8", "surrogateescape")
        else:
            raise BadRequest("text needs 'data' (a string) or 'data_b64'")
        seq = self.emu.seq
        bracketed = self.emu.modes.get("bracketedPaste", False)
        multiline = b"\n" in data or b"\r" in data
        if bracketed and (multiline or params.get("paste") is True):
            data = b"\x1b[200~" + data.replace(b"\x1b[201~", b"") + b"\x1b[201~"
        self._write(data)
        if self.recorder is not None:
            self.recorder.typed(data, "text")
        self.active_at = time.time()
        result: JSONObject = {"seq": seq, "bytes": len(data)}
        return self._enter_later(result) if params.get("enter") is True else result

    async def _enter_later(self, result: JSONObject) -> JSONObject:
        await asyncio.sleep(ENTER_GAP)
        self._write(b"\r")
        return result

    def _key(self, params: JSONObject) -> JSONObject:
        names = params.get("keys")
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise BadRequest("key needs 'keys', a non-empty list of key names")
        parsed = keys.parse_all(cast(list[str], names))
        app_cursor = self.emu.modes.get("applicationCursor", False)
        data = b"".join(k.encode(app_cursor) for k in parsed)
        seq = self.emu.seq
        self._write(data)
        if self.recorder is not None:
            self.recorder.typed(data, "key " + " ".join(cast(list[str], names)))
        self.active_at = time.time()
        return {"seq": seq, "bytes": len(data)}

    def _resize(self, params: JSONObject) -> JSONObject:
        cols = _int_param(params, "cols", 2, 1000)
        rows = _int_param(params, "rows", 2, 1000)
        assert cols is not None and rows is not None
        if self.child is None or self.pty_closed:
            raise RequestFailed("exited", f"session {self.id} has exited")
        self.emu.resize(cols, rows)
        self.child.set_size(cols, rows)
        self.record.update(cols=cols, rows=rows)
        if self.recorder is not None:
            self.recorder.resize(cols, rows)
        self.last_change = time.monotonic()
        self._check_waits()
        self._schedule_push()
        return {"cols": cols, "rows": rows, "seq": self.emu.seq}

    def _signal(self, params: JSONObject) -> JSONObject:
        name = str(params.get("name", "")).upper().removeprefix("SIG")
        if name not in SIGNALS:
            raise BadRequest(
                f"unknown signal {params.get('name')!r}; use one of {' '.join(SIGNALS)}"
            )
        if self.child is None or self.exit_status is not None:
            raise RequestFailed("exited", self._exited_message())
        sig = SIGNALS[name]
        if params.get("leader") is True:
            os.kill(self.child.pid, sig)
            return {"signal": f"SIG{name}", "pids": [self.child.pid]}
        try:
            pgid = os.tcgetpgrp(self.child.fd)
        except OSError:
            pgid = 0
        if pgid <= 1:  # no foreground group yet (the child has not claimed its tty)
            pgid = self.child.pid
        from agentty_core.proc.killtree import alive, group_members

        targets = [p.pid for p in alive(group_members(pgid)) if os.getpgid(p.pid) == pgid]
        os.killpg(pgid, sig)
        return {"signal": f"SIG{name}", "pgid": pgid, "pids": targets}

    def _start_recording(self, input: bool, markers: bool) -> None:
        path = self.home.cast_path(self.id)
        env = cast(dict[str, str], self.spec.get("env", {}))
        self.recorder = Recorder(
            path, self.emu.cols, self.emu.rows, input=input, markers=markers, env=env
        )
        self.record["cast"] = str(path)

    def _record(self, params: JSONObject) -> JSONObject:
        if params.get("on") is True:
            if self.finalizing:
                raise RequestFailed("exited", self._exited_message())
            if self.recorder is None:
                self._start_recording(params.get("input") is True, params.get("markers") is True)
        elif params.get("on") is False:
            if self.recorder is not None:
                self.recorder.close()
                self.recorder = None
        else:
            raise BadRequest("record needs 'on': true or false")
        path = str(self.home.cast_path(self.id))
        return {"recording": self.recorder is not None, "path": path}

    def _wait(self, params: JSONObject) -> Answer:
        return self.wait(parse_wait(params))

    async def _kill_request(self, params: JSONObject) -> JSONObject:
        grace = params.get("grace", 2.0)
        if not protocol.finite(grace) or not 0 <= float(grace) <= 60:  # type: ignore[arg-type]  # finite() checked the type
            raise BadRequest("grace must be a number of seconds in 0..60")
        if self.finalizing and self.kill_task is None:
            raise RequestFailed("exited", self._exited_message())
        result = await self.kill(float(grace))  # type: ignore[arg-type]  # finite() checked the type
        if result.survivors:
            raise RequestFailed(
                "kill_unconfirmed",
                f"processes still alive after SIGKILL: {result.survivors}",
                survivors=result.survivors,
            )
        return {"escalated": result.escalated, **self._exit_fields()}

    handlers: ClassVar[dict[str, Callable[[Worker, JSONObject], Answer]]] = {
        "ping": _ping,
        "info": _info,
        "get": _get,
        "text": _text,
        "key": _key,
        "resize": _resize,
        "signal": _signal,
        "wait": _wait,
        "kill": _kill_request,
        "record": _record,
    }


def _int_param(
    params: JSONObject, key: str, low: int, high: int, default: int | None = None
) -> int | None:
    value = params.get(key, default)
    if value is None:
        if default is None and key in ("cols", "rows"):
            raise BadRequest(f"{key} is required")
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise BadRequest(f"{key} must be an integer in {low}..{high}")
    return value
