"""Asking the home's warm spawner for a worker; launching the spawner when there is none.

A fresh worker spends ~0.1 s importing asyncio, pyte and agentty before it can run anything.
The spawner (`agentty_core.worker.spawner`, one per home) has imported all that once and
forks a worker per request in a few milliseconds. This is the caller's side: it sends what
the worker must inherit from the caller (environment, cwd, umask, rlimits, signal mask, the
stdio and status pipe as descriptors) and gets back the worker's pid and a pidfd.

The spawner is only ever a shortcut. Any failure (none running, wedged, refused, a caller
it cannot reproduce) costs at most `WAIT` and the worker is spawned directly, as before.
Once the spawner took the request, the worker's answer is waited for longer (a loaded
machine; `spawning.read_answer`) unless the spare that was to answer is stopped.
A request the spawner answers late does no harm: the caller has closed the worker's spec
pipe, so a worker forked for it reads nothing and exits.

Linux only (pidfds, /proc); `AGENTTY_SPAWNER=0` turns it off.
"""

from __future__ import annotations

import os
import sys
import time

from agentty_core import spawning
from agentty_core._version import __version__
from agentty_core.launch import spawn
from agentty_core.launch.spawn import SpawnedWorker, WorkerTimeout
from agentty_core.ownership import lock_held, private_dir
from agentty_core.spawning import (
    INFO_NAME,
    LOCK_NAME,
    LOG_NAME,
    caller_context,
    home_root,
)

WAIT = spawning.WAIT  # seconds a start may lose to a spawner that does not take it
SPAWNER_BOOT = spawning.detached_boot("worker.spawner")

_wanted: str | None = None  # the home whose spawner should be launched (none answered)
_successor = False  # ... because the one that answered stepped down
_asked = False  # the `start` fast lane asked it already, in vain: not again (`passed_over`)


class ForkedWorker(SpawnedWorker):
    """A worker the spawner forked: not our child, so it is watched through its pidfd
    (which, unlike the pid, cannot come to name another process).

    Several threads may watch it at once (the reaper thread waits while the caller polls).
    The pidfd is closed by the last of them to leave `select`, never while another one
    holds its number: a closed number is soon another descriptor, which it would watch."""

    def __init__(self, pid: int, spec_fd: int, status_fd: int, pidfd: int) -> None:
        super().__init__(pid, spec_fd, status_fd)
        self.pidfd = pidfd
        import threading  # here: a start with no spawner spawns before it imports this

        self._lock = threading.Lock()
        self._watching = 0  # threads between reading `pidfd` and leaving `select` on it

    def _exited(self, timeout: float | None) -> bool:
        import select

        with self._lock:
            if self.returncode is not None:
                return True
            fd = self.pidfd
            self._watching += 1
        ready: list[int] = []
        try:
            ready, _, _ = select.select([fd], [], [], timeout)
        finally:
            with self._lock:
                self._watching -= 1
                if ready and self.returncode is None:
                    self.returncode = 0  # not ours to reap: the exit status is not ours to know
                if self.returncode is not None and not self._watching and self.pidfd >= 0:
                    os.close(self.pidfd)  # the last watcher: nobody holds the number now
                    self.pidfd = -1
        return self.returncode is not None

    def poll(self) -> int | None:
        self._exited(0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._exited(timeout):
            raise WorkerTimeout(f"worker {self.pid} still running after {timeout:g}s")
        assert self.returncode is not None
        return self.returncode

    def kill_now(self) -> None:
        import signal

        with self._lock:
            if self.pidfd >= 0:
                try:  # noqa: SIM105
                    signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
                except ProcessLookupError:
                    pass


def enabled() -> bool:
    return (
        sys.platform == "linux"
        and hasattr(os, "pidfd_open")
        and os.environ.get("AGENTTY_SPAWNER", "1").strip() != "0"
    )


def socket_path(root: str) -> str | None:
    """The spawner's socket, next to the sessions' (None for a home too long for one)."""
    from pathlib import Path

    from agentty_core.paths import Home

    return Home(Path(root)).spawner_socket()


def spawn_worker(output_fd: int | None, *, launch: bool = True) -> SpawnedWorker:
    """A worker from the home's spawner when it takes the request within `WAIT`, else one
    spawned directly (and, with `launch`, a spawner started for the next `start` when none runs)."""
    forked = ask(output_fd)
    if forked is not None:
        return forked
    worker = spawn.spawn_worker(output_fd)
    if launch:
        launch_if_wanted()
    return worker


def ask(output_fd: int | None) -> ForkedWorker | None:
    """A worker forked by the spawner, or None (the reason is not the caller's business)."""
    global _wanted, _successor
    if not enabled() or _asked:
        return None
    deadline = time.monotonic() + WAIT
    try:
        root = home_root()
        if not lock_held(os.path.join(root, LOCK_NAME)):
            # None runs (a new home, or it went idle): start one for the next `start`. Told
            # by its lock, before pathlib and json: this start spawns directly meanwhile.
            _wanted = root
            return None
        path = socket_path(root)
        request = _request(deadline)  # before connecting: the spawner waits for it
    except OSError:  # the cwd is gone, say: a direct spawn handles that as it always has
        return None
    if path is None:
        return None
    if not private_dir(os.path.dirname(path)):
        if not os.path.lexists(os.path.dirname(path)):
            _wanted = root  # a new home: `start` creates it, then the spawner can start
        return None
    import _socket

    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    ours: list[int] = []
    try:
        sock.settimeout(max(0.001, deadline - time.monotonic()))
        try:
            sock.connect(path)
        except (FileNotFoundError, ConnectionRefusedError):
            _wanted = root  # none runs (or it died): start one for the next `start`
            return None
        cred = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12)
        if int.from_bytes(cred[4:8], sys.byteorder) != os.getuid():
            return None
        spawner = int.from_bytes(cred[0:4], sys.byteorder)
        spec_r, spec_w = os.pipe()
        ours += [spec_r, spec_w]
        status_r, status_w = os.pipe()
        ours += [status_r, status_w]
        fds = [spec_r, status_w] + ([output_fd] if output_fd is not None else [])
        sock.settimeout(max(0.001, deadline - time.monotonic()))
        spawning.send_request(sock, request, fds)
        for fd in (spec_r, status_w):  # the worker has them now; EOF must mean it is gone
            os.close(fd)
            ours.remove(fd)
        answer_by = time.monotonic() + spawning.ANSWER_WAIT
        import json

        reply, pidfd = spawning.read_answer(sock, spawner, deadline, answer_by, json.loads)
        if reply is not None and reply.get("reason") in spawning.STEPPED_DOWN:
            _wanted, _successor = root, True  # it stepped down: the next is launched by us
        if reply is None or pidfd < 0 or reply.get("ok") is not True:
            if pidfd >= 0:
                os.close(pidfd)
            return None
        pid = reply.get("pid")
        if not isinstance(pid, int):
            os.close(pidfd)
            return None
        ours.clear()
        return ForkedWorker(pid, spec_w, status_r, pidfd)
    except OSError:
        return None
    finally:
        sock.close()
        for fd in ours:  # a worker forked late for this request reads EOF and exits
            os.close(fd)


def _request(deadline: float) -> bytes:
    """What the worker must inherit from this process, as `posix_spawn` would give it; and
    when this process stops waiting (CLOCK_MONOTONIC is the same in every process), so
    that a spawner behind on its queue skips requests whose callers have gone direct."""
    import json

    request = {
        "v": 1,
        "deadline": deadline,
        "env": spawn.worker_env(),
        **caller_context(__version__),
    }
    return json.dumps(request, ensure_ascii=True).encode() + b"\n"


# ------------------------------------------------------------------ launching and ending


def passed_over(stepped_down: bool) -> None:
    """The `start` fast lane (`cli/startlane.py`) asked the spawner and was not served:
    this start spawns its worker directly instead of waiting for it again; and when it
    stepped down (an upgrade), launches its successor afterwards."""
    global _asked, _wanted, _successor
    _asked = True
    if stepped_down:
        _wanted, _successor = home_root(), True


def forget() -> None:
    """No spawner to launch after all (the start was refused)."""
    global _wanted, _successor
    _wanted, _successor = None, False


def launch_if_wanted(*, reap: bool = True) -> None:
    """Start the spawner of the home where none answered (once; errors are ignored: the
    direct path works without it). Not while one holds the home's lock (it is starting,
    and every `start` meanwhile finds no socket yet), unless that one is stepping down.
    `reap`: see `launch`."""
    global _wanted, _successor
    root, successor = _wanted, _successor
    _wanted, _successor = None, False
    if root is None or not enabled():
        return
    if os.environ.get("AGENTTY_FAILPOINTS"):
        from agentty_core import failpoints

        failpoints.hit("spawner_client.launch")
    takeover = successor
    if not successor and lock_held(os.path.join(root, LOCK_NAME)):
        holder = info(root)
        if holder is None or holder.get("ready") is not True:
            return  # still starting (launched with the lock held): its socket comes soon
        if _still_bound(holder):
            return  # it was starting when asked, and listens now
        # Ready but unreachable (its socket was removed or replaced): it steps down within
        # its next check, and a new one waits for the lock meanwhile.
        takeover = True
    try:  # noqa: SIM105
        launch(root, takeover=takeover, reap=reap)
    except OSError:
        pass  # another start launched one just now, or the home is not ready


def _still_bound(holder: dict[str, object]) -> bool:
    """Is the socket at the ready spawner's path the one it bound (its inode)?"""
    path, bound = holder.get("socket"), holder.get("bound")
    if not isinstance(path, str) or not isinstance(bound, list):
        return False
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return [st.st_dev, st.st_ino] == bound


def launch(root: str, *, takeover: bool = False, reap: bool = True) -> int:
    """Start the home's spawner, detached (own session, stdio on its log and /dev/null, no
    descriptor of ours but the spawner lock, taken here and handed over: one launch per
    home at a time, OSError for the others). `takeover`: one holds the lock and is stepping
    down; ours waits for it (a moment), and exits if it does not let go. `reap`: a thread
    of ours waits for it to end, as a long-lived caller must (it would linger as a zombie);
    a command about to exit leaves that to whoever adopts it (the thread's start waited for
    a CPU that the new spawner took: ~10 ms of a cold `start` on two cores)."""
    import fcntl

    logs = os.path.join(root, "logs")
    if not (private_dir(root) and private_dir(logs)):
        raise OSError("the home is not ready")
    where = socket_path(root)
    if where is not None and os.path.isdir(where) and not os.path.islink(where):
        # It could not bind there (only a dead spawner's socket is replaced): every start
        # would launch one that imports everything and fails. `doctor` names the entry.
        raise OSError(f"a directory is in the way of {where}")
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    lock_fd = os.open(os.path.join(root, LOCK_NAME), flags, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(lock_fd)
        if not takeover:
            raise OSError("a spawner is starting") from None
        lock_fd = -1
    except OSError:
        os.close(lock_fd)
        raise
    if 0 <= lock_fd <= spawning.LOCK_FD:  # a dup2 onto itself would stay close-on-exec
        moved = fcntl.fcntl(lock_fd, fcntl.F_DUPFD_CLOEXEC, spawning.LOCK_FD + 1)
        os.close(lock_fd)  # the lock stays: it belongs to the open file, which `moved` keeps
        lock_fd = moved
    try:
        return _launch(root, lock_fd, reap)
    finally:
        if lock_fd >= 0:
            os.close(lock_fd)  # the spawner holds it now (or, not launched, nobody)


def _launch(root: str, lock_fd: int, reap: bool) -> int:
    """`launch`'s spawn; `lock_fd` (unless -1) becomes the spawner's LOCK_FD."""
    import signal

    env = dict(os.environ)
    env["AGENTTY_HOME"] = root  # the census and the reaper find it by this
    env.pop("AGENTTY_SESSION_ID", None)
    env.pop("AGENTTY_STATUS_FD", None)
    env.pop(spawning.LOCK_FD_ENV, None)
    extra = {}
    if lock_fd >= 0:
        env[spawning.LOCK_FD_ENV] = str(spawning.LOCK_FD)
        extra[lock_fd] = spawning.LOCK_FD
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
    log_fd = os.open(os.path.join(root, "logs", LOG_NAME), flags, 0o600)
    try:
        actions = spawn.detached_descriptors(None, log_fd, extra, {log_fd})
        pid = os.posix_spawn(
            sys.executable,
            [sys.executable, "-c", SPAWNER_BOOT],
            env,
            file_actions=actions,
            setsid=True,
            setsigmask=(),
            setsigdef=[
                s for s in signal.valid_signals() if s not in (signal.SIGKILL, signal.SIGSTOP)
            ],
        )
    finally:
        os.close(log_fd)
    if not reap:
        return pid
    import threading

    # Ours until it ends (after its idle period): reaped then, or it would linger as a zombie.
    threading.Thread(target=_reap, args=(pid,), name=f"reap-spawner-{pid}", daemon=True).start()
    return pid


def _reap(pid: int) -> None:
    try:  # noqa: SIM105
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def info(root: str) -> dict[str, object] | None:
    """The running spawner's own description (`spawner.json`), if it is alive."""
    from agentty_core.errors import StateError
    from agentty_core.proc import identity
    from agentty_core.state.records import read_private_file, strict_json

    try:  # (a FIFO there: refused, not a hang)
        raw = read_private_file(os.path.join(root, INFO_NAME))
        data = strict_json(raw) if raw is not None else None
    except (StateError, ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    pid, token = data.get("pid"), data.get("start")
    if not isinstance(pid, int) or not isinstance(token, str):
        return None
    return data if identity.same_process(pid, token) else None


def describe(found: object) -> str:
    """One line for `status` and `doctor`."""
    if isinstance(found, dict):
        state = "ready" if found.get("ready", True) else "starting"
        return f"pid {found.get('pid')}, {state} since {found.get('since')}"
    return "off (AGENTTY_SPAWNER=0)" if not enabled() else "none running"


def stop(root: str, timeout: float = 3.0) -> bool:
    """End the home's spawner (tests, the pytest plugin's reaper); True if one was ended."""
    import signal

    deadline = time.monotonic() + timeout
    found = info(root)
    lock = os.path.join(root, LOCK_NAME)
    while found is None and lock_held(lock) and time.monotonic() < deadline:
        time.sleep(0.01)  # one took the lock and is about to describe itself
        found = info(root)
    if found is None:
        return False
    pid = found["pid"]
    assert isinstance(pid, int)
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return False
    try:
        if info(root) is None:  # it ended, and the pid may name another process now
            return False
        signal.pidfd_send_signal(pidfd, signal.SIGTERM)
        import select

        if not select.select([pidfd], [], [], timeout)[0]:
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            select.select([pidfd], [], [], timeout)
    except ProcessLookupError:
        pass
    finally:
        os.close(pidfd)
    return True
