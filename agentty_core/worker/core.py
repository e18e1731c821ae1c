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

The Worker is assembled from parts, each in its own module with one job: pty_io (reading
the program's output, queueing its input), lifecycle (exit, drain, finalize, kill),
wait_registry (pending waits), requests (the protocol's methods), push (subscribers' screen
events); base holds the state they share. This module has the start-up and the socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import stat
from collections.abc import Callable
from typing import cast

from agentty_core import failpoints
from agentty_core.errors import SpawnError, StateError
from agentty_core.ipc.server import Server
from agentty_core.proc import identity
from agentty_core.proc.ptyhost import become_subreaper, spawn
from agentty_core.protocol import JSONObject
from agentty_core.state.store import Kept, StateStore, atomic_write, now_iso, sync_directory
from agentty_core.worker import warmup
from agentty_core.worker.base import WorkerBase
from agentty_core.worker.lifecycle import Lifecycle
from agentty_core.worker.pty_io import PtyIO
from agentty_core.worker.push import Push
from agentty_core.worker.requests import HOLD_WAIT, Requests
from agentty_core.worker.wait_registry import WaitRegistry

log = logging.getLogger("agentty.worker")

MAX_CONNECTIONS = 64
IDLE_CONNECTION = 600.0


class Worker(PtyIO, Lifecycle, WaitRegistry, Requests, Push, WorkerBase):
    """One session: its program, emulator and socket, from start-up to the program's end."""

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
        # Handled now: the mask of the process that ran `start` (one that blocked SIGCHLD,
        # say) is no more ours than the program's. With SIGCHLD blocked, the program's exit
        # was never seen; with SIGVTALRM, a runaway regex was never cut short.
        signal.pthread_sigmask(signal.SIG_SETMASK, ())
        become_subreaper()
        worker_pid = os.getpid()
        if self.record.get("workerPid") != worker_pid:  # a `start` names it in its intent
            self._update_record(**identity.worker_fields(worker_pid))
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
            for sig in (signal.SIGTERM, signal.SIGINT):  # the caller's SIGTERM for a failed
                loop.remove_signal_handler(sig)  # start would begin a kill of nothing, left
                signal.signal(sig, signal.SIG_IGN)  # pending (an error in the log) as we end
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
        activated = self._record_running(
            status="running",
            emulator=self.emulator_name,
            pid=pid,
            pidStart=identity.start_token(pid),
            createTime=identity.create_time(pid),
        )
        _load_the_end()  # the code on disk may go as soon as `start` has its answer
        failpoints.hit("worker.before_ready")
        self._report({"ok": True, "pid": pid, "workerPid": worker_pid, "active": activated})
        failpoints.hit("worker.after_ready")
        sync_directory(self.home.root)  # the running record's rename: see _record_running
        self._reap()  # the program may have exited before the handler was armed
        if self.spec.get("held") is True:  # `run`: its hold comes at once, or never will
            loop.call_later(HOLD_WAIT, self._never_held)
        warmup.settle()  # the start-up's freed memory back to the system (idle footprint)
        await self.finalized.wait()
        # Let the answer to a `kill` go out, then close every connection so that no handler
        # is still running (and cancelled mid-read) when the loop shuts down.
        await asyncio.sleep(0.05)
        if self.exit_unsynced:  # after the answers: a `kill` does not wait for this fsync
            sync_directory(self.home.root)
        if self.server is not None:
            self.server.close_all()
        await asyncio.sleep(0)
        return 0

    def _record_running(self, **fields: object) -> bool:
        """The running record and, when `start` asked for it, the active pointer, in one
        write under the state lock: both or neither. Set by `start` after `ready`, the
        pointer needed a lock of its own, and when that timed out `start` failed with the
        program already running. True if the pointer was set."""
        activate = self.spec.get("activate") is True
        self.record.update(fields)

        kept: list[Kept] = []  # the pointer as it was, if the list cannot be written

        def point_here() -> Callable[[], None] | None:
            if not activate:
                return None
            path = self.home.active_file
            kept.append(Kept(path))
            try:  # the directory is synced once, by the record's write that follows
                atomic_write(path, self.id.encode() + b"\n", sync_dir=False)
            except OSError as exc:  # the running record is not written either
                raise StateError(f"{exc.strerror or exc} writing {path}") from None
            return kept[0].put_back

        # The directory is synced once `start` has its answer (`run`), as a worker does for
        # its exit once `kill` has its own: the renamed files are what every reader sees
        # already; only a crash of the machine in that moment, which ends the session too,
        # could undo them.
        unsynced = StateStore(self.home, lean=True, sync_dir=False)
        try:
            unsynced.update_or_restore(self.id, self.record, point_here, **fields)
        finally:
            for pointer in kept:
                pointer.drop()
        return activate

    def _report(self, message: JSONObject) -> None:
        """One line on the status pipe, then close it: `start` is waiting for it."""
        if self.status_fd is None:
            return
        with contextlib.suppress(OSError):
            os.write(self.status_fd, json.dumps(message).encode() + b"\n")
        with contextlib.suppress(OSError):
            os.close(self.status_fd)
        self.status_fd = None

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


def _load_the_end() -> None:
    """Import what ending the session needs before `start` has its answer (a worker forked
    by the warm spawner has it already; a directly spawned one imported it with its other
    modules, while `start` wrote the intent record: `worker.main`).

    Imported only when a kill came, it would come from whatever is on disk by then: other
    code after an upgrade, nothing after an uninstall, and the session could not be ended
    (`kill` failed with "No module named ...", SIGTERM did nothing). Imported after the
    answer, it raced an uninstall made right after `start` returned."""
    import agentty_core.proc.killtree  # noqa: F401
