"""Starting a session's worker process before its session exists.

The worker spends ~0.1 s importing before it can do anything, and reads its spec (the
session to run) only after that. So `start` launches it first and decides the session
meanwhile: the library before it writes the intent record, the `agentty start` command
before it even imports the rest of agentty (see hotpath). A worker that never gets a spec
exits when its stdin closes; the command kills one it did not use before it exits.

Kept to `os` and `sys`: the command's hot path imports this.
"""

from __future__ import annotations

import os
import sys
import time

WORKER_ARGV = ("-m", "agentty_core.worker_main")


class WorkerTimeout(Exception):
    """The worker did not exit within the time given to `wait`."""


class SpawnedWorker:
    """A detached worker (own session and process group) that waits for its spec on stdin
    and will write one status line on the pipe `status_fd` reads."""

    def __init__(self, pid: int, spec_fd: int, status_fd: int) -> None:
        self.pid = pid
        self.spec_fd = spec_fd
        self.status_fd = status_fd
        self.returncode: int | None = None

    def hand_over(self, spec: bytes) -> None:
        """Write the spec and close stdin; a worker that died meanwhile is noticed on the
        status pipe, not here."""
        try:
            view = memoryview(spec)
            while view:
                view = view[os.write(self.spec_fd, view) :]
        except BrokenPipeError:
            pass
        finally:
            self.close_spec()

    def close_spec(self) -> None:
        if self.spec_fd >= 0:
            os.close(self.spec_fd)
            self.spec_fd = -1

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                self.returncode = 0  # reaped elsewhere
            else:
                if pid:
                    self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Reap the worker; WorkerTimeout if it is still running after `timeout` seconds."""
        if timeout is None:
            while self.returncode is None:
                try:
                    _, status = os.waitpid(self.pid, 0)
                except ChildProcessError:
                    self.returncode = 0
                else:
                    self.returncode = os.waitstatus_to_exitcode(status)
            return self.returncode
        deadline = time.monotonic() + timeout
        while self.poll() is None:
            if time.monotonic() >= deadline:
                raise WorkerTimeout(f"worker {self.pid} still running after {timeout:g}s")
            time.sleep(0.005)
        assert self.returncode is not None
        return self.returncode


def spawn_worker(output_fd: int | None) -> SpawnedWorker:
    """Launch a worker with stdout and stderr on `output_fd` (the session's log), or on
    /dev/null until its spec names the log. Raises OSError if it cannot be started."""
    spec_r, spec_w = os.pipe()
    status_r, status_w = os.pipe()
    ours = {spec_r, spec_w, status_r, status_w}
    try:
        # Nothing of the caller's may reach the detached worker: a pipe it held open would
        # keep `$(agentty start ...)` waiting for as long as the session runs.
        _close_on_exec_all(keep=ours)
        os.set_inheritable(status_w, True)
        env = dict(os.environ)
        env["AGENTTY_STATUS_FD"] = str(status_w)
        env.pop("AGENTTY_SESSION_ID", None)  # only the program carries its session's marker
        actions: list[tuple[int, ...] | tuple[int, int, str, int, int]] = [
            (os.POSIX_SPAWN_DUP2, spec_r, 0)
        ]
        if output_fd is None:
            actions.append((os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0))
        else:
            actions.append((os.POSIX_SPAWN_DUP2, output_fd, 1))
        actions.append((os.POSIX_SPAWN_DUP2, 1, 2))
        pid = os.posix_spawn(
            sys.executable,
            [sys.executable, *WORKER_ARGV],
            env,
            file_actions=actions,
            setsid=True,
        )
    except BaseException:
        for fd in (spec_w, status_r):
            os.close(fd)
        raise
    finally:
        os.close(spec_r)
        os.close(status_w)
    return SpawnedWorker(pid, spec_w, status_r)


def _close_on_exec_all(keep: set[int]) -> None:
    try:
        listed = os.listdir("/proc/self/fd")
    except OSError:
        listed = [str(fd) for fd in range(3, 256)]
    for name in listed:
        fd = int(name)
        if fd > 2 and fd not in keep:
            try:  # noqa: SIM105  (contextlib stays off the hot path)
                os.set_inheritable(fd, False)
            except OSError:
                pass  # the listing's own descriptor, already closed


_early: SpawnedWorker | None = None


def spawn_early() -> None:
    """Start a worker for the session this process is about to start (see hotpath)."""
    global _early
    _early = spawn_worker(None)


def take_early() -> SpawnedWorker | None:
    """The worker `spawn_early` started, once; None if there is none."""
    global _early
    early, _early = _early, None
    return early


def discard_early() -> None:
    """Kill and reap an early worker nobody took (it has no session: nothing else runs)."""
    early = take_early()
    if early is None:
        return
    early.close_spec()
    os.close(early.status_fd)
    try:  # noqa: SIM105  (contextlib stays off the hot path)
        os.kill(early.pid, 9)  # SIGKILL, without importing signal
    except ProcessLookupError:
        pass
    early.wait()
