"""Starting a session's worker process before its session exists.

The worker spends ~0.1 s importing before it can do anything, and reads its spec (the
session to run) only after that. So `start` launches it first and decides the session
meanwhile: the library before it writes the intent record, the `agentty start` command
before it even imports the rest of agentty (see hotpath). A worker that never gets a spec
exits when its stdin closes; the command kills one it did not use before it exits.

Kept to the interpreter's built-in modules: the command's hot path imports this.
"""

from __future__ import annotations

import errno
import os
import sys
import time

from agentty_core.proc import descriptors
from agentty_core.spawning import STATUS_FD, detached_boot

WORKER_ARGV = ("-c", detached_boot("worker.main"))


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

    def kill_now(self) -> None:
        """SIGKILL (only to a worker not yet reaped: its pid still names it)."""
        if self.returncode is None:
            try:  # noqa: SIM105  (contextlib stays off the hot path)
                os.kill(self.pid, 9)  # SIGKILL, without importing signal
            except ProcessLookupError:
                pass

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
    /dev/null until its spec names the log. Raises OSError if it cannot be started.

    Safe to call from several threads at once: nothing of the caller's descriptors is
    changed, the worker's are arranged by the spawn's own file actions."""
    ours: list[int] = []
    try:
        spec_r, spec_w = os.pipe()
        ours += [spec_r, spec_w]
        status_r, status_w = os.pipe()
        ours += [status_r, status_w]
        # Above the descriptors the worker gets (the caller may have closed its stdio, and
        # a pipe may have landed there): dup2 onto itself would not clear close-on-exec.
        spec_r, status_w = _above(spec_r, ours), _above(status_w, ours)
        out = _above(output_fd, ours) if output_fd is not None else None
        env = worker_env()
        for attempt in (1, 2):
            actions = _worker_descriptors(spec_r, out, status_w, set(ours))
            try:
                pid = os.posix_spawn(
                    sys.executable,
                    [sys.executable, *WORKER_ARGV],
                    env,
                    file_actions=actions,
                    setsid=True,
                )
                break
            except NotImplementedError as exc:  # no POSIX_SPAWN_SETSID (old macOS)
                raise OSError(f"cannot start a detached process here: {exc}") from None
            except OSError as exc:
                # EBADF: another thread closed a descriptor listed for closing: list again.
                if exc.errno != errno.EBADF or attempt == 2:
                    raise
    except BaseException:
        for fd in ours:
            os.close(fd)
        raise
    for fd in ours:
        if fd not in (spec_w, status_r):
            os.close(fd)
    return SpawnedWorker(pid, spec_w, status_r)


def worker_env() -> dict[str, str]:
    """The environment a worker gets: the caller's, with the status pipe's descriptor."""
    env = dict(os.environ)
    env["AGENTTY_STATUS_FD"] = str(STATUS_FD)
    env.pop("AGENTTY_SESSION_ID", None)  # only the program carries its session's marker
    return env


def _above(fd: int, ours: list[int]) -> int:
    """`fd`, or a close-on-exec copy above STATUS_FD (kept in `ours` to be closed later)."""
    if fd > STATUS_FD:
        return fd
    import fcntl

    copy = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, STATUS_FD + 1)
    ours.append(copy)
    return copy


def detached_descriptors(
    stdin: int | None, out: int | None, extra: dict[int, int], ours: set[int]
) -> list[tuple[int, ...] | tuple[int, int, str, int, int]]:
    """File actions for a detached process: stdin (or /dev/null), stdout and stderr on `out`
    (or /dev/null), each `extra` source on its target, and none of the caller's other
    inheritable descriptors."""
    actions: list[tuple[int, ...] | tuple[int, int, str, int, int]] = [
        *descriptors.close_actions(keep=ours)
    ]
    if stdin is None:
        actions.append((os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0))
    else:
        actions.append((os.POSIX_SPAWN_DUP2, stdin, 0))
    if out is None:
        actions.append((os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0))
    else:
        actions.append((os.POSIX_SPAWN_DUP2, out, 1))
    actions.append((os.POSIX_SPAWN_DUP2, 1, 2))
    for source, target in extra.items():
        actions.append((os.POSIX_SPAWN_DUP2, source, target))
    return actions


def _worker_descriptors(
    spec_r: int, out: int | None, status_w: int, ours: set[int]
) -> list[tuple[int, ...] | tuple[int, int, str, int, int]]:
    """The worker's stdin (the spec pipe), stdout and stderr (the log or /dev/null) and
    status pipe, and nothing else: a caller's pipe held by the detached worker would keep
    `$(agentty start ...)` waiting for as long as the session runs. Python opens
    descriptors close-on-exec; only ones the caller itself inherited need closing."""
    return detached_descriptors(spec_r, out, {status_w: STATUS_FD}, ours)


_early: SpawnedWorker | None = None


def spawn_early() -> None:
    """Start a worker for the session this process is about to start (see hotpath): forked
    by the home's warm spawner when one answers, else spawned here."""
    global _early
    from agentty_core.launch import spawner_client

    _early = spawner_client.spawn_worker(None, launch=False)


def take_early() -> SpawnedWorker | None:
    """The worker `spawn_early` started, once; None if there is none."""
    global _early
    early, _early = _early, None
    return early


def discard_early(*, exits: bool = False) -> None:
    """Kill and reap an early worker nobody took (it has no session: nothing else runs);
    or, the command's work done, start the home's spawner if none answered (not after a
    refused start: that leaves no process behind). `exits`: this process ends next, and
    leaves reaping the spawner to whoever adopts it (`spawner_client.launch`)."""
    from agentty_core.launch import spawner_client

    early = take_early()
    if early is None:
        spawner_client.launch_if_wanted(reap=not exits)
        return
    spawner_client.forget()
    early.close_spec()
    os.close(early.status_fd)
    early.kill_now()
    early.wait()
