"""The home's warm spawner: a fork server for session workers (`launch/spawner_client`).

A fresh worker spends ~0.1 s importing asyncio, pyte and agentty. This process does that
once, freezes its heap (`gc.freeze()`: the imported objects are never touched by the
collector again, so the pages stay shared with every child) and forks one worker per
request on its socket, `spawner.sock` next to the sessions' sockets (0600 in the private
directory; a peer of another uid is refused). Models: multiprocessing's forkserver,
Android's zygote.

Each worker is double-forked: the intermediate process sends the caller the worker's pid
and a pidfd and exits at once (reaped here), so the worker is in its own session and never
the spawner's child for long. Right after the fork it closes what only the spawner may hold
(its lock above all: the lock belongs to the open file, and a stopped intermediate process
holding it would keep every later spawner from starting) and names itself `agentty-middle`;
the caller is told its pid and gives up on it at once if it stops, and the spawner kills
a stopped one among its children (a next spawner, one left behind by a spawner killed
outright). The forked side (`forked.become`) sets up what the caller
would have given a directly spawned worker, then runs the worker's own main.

While idle it keeps a spare (`worker/spare.py`): the next request's worker, forked in advance
by the spare maker (`worker/maker.py`), a copy of this process that does nothing else. The
first worker a spare became is the model: once it has started, the maker learns the pages it
wrote, and later spares copy them before their request comes (`worker/prefault.py`).

The spawner is single-threaded and does one request at a time (a fork takes ~1 ms; a
request must arrive whole within REQUEST_TIMEOUT). It exits after `AGENTTY_SPAWNER_IDLE`
seconds (default 600; anything but a positive number means the default) without serving a
request, on SIGTERM (acted on while it waits for a request: `worker/stopping.py`), when its
code changed on disk (an upgrade) and when its own context, inherited from the caller that
launched it, cannot serve a caller (a higher nice value, a lower hard limit:
`forked.Outgrown`): the caller then spawns directly and starts a new one.
It does not keep its launcher's working directory (a mount it would keep busy): it works in
"/". One per home: it holds `spawner.lock` for its life.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import gc
import json
import math
import os
import select
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import NoReturn

import agentty_core.worker.main as worker_main  # before asyncio: it keeps ssl out
from agentty_core import failpoints, spawning
from agentty_core._version import __version__
from agentty_core.paths import FileIdentity, Home, identity_of, still_at
from agentty_core.proc import identity
from agentty_core.state.store import now_iso
from agentty_core.worker import forked, prefault, spare, stopping, warmup
from agentty_core.worker.codewatch import CodeWatch
from agentty_core.worker.maker import Maker

IDLE = 600.0
LOCK_WAIT = 2.0  # a spawner stepping down still holds the lock for a moment
REAP_EVERY = 0.01  # how soon an exited intermediate process is reaped
CHECK_EVERY = 0.5  # how often an idle spawner checks that its socket is still its own
REQUEST_TIMEOUT = 2.0  # for a whole request: a caller that trickles it does not wedge the spawner
MAX_REQUEST = 1 << 22
LATE = 0.005  # a request this close to its caller's deadline is not worth a fork
MAX_FDS = 3
SPARE_BACKOFF = 5.0  # after a spare that could not take a request, fork for each instead
# The next spare is forked this long after its predecessor took a request: forked at once,
# it competed with that start (~15 ms of the worker's own work after the hand-over) for the
# two cores here, and made it slower by 4-4.5 ms (A/B, starts spaced out and back to back).
SPARE_AFTER = 0.02
LEARN_AFTER = 0.3  # the model worker has started by then (~20 ms; longer under load)


def _log(message: str) -> None:
    with contextlib.suppress(OSError):  # its log on a full disk: the line is lost, not us
        sys.stderr.write(f"{now_iso()} spawner {os.getpid()}: {message}\n")
        sys.stderr.flush()


def _warm() -> None:
    """Import what a worker imports, up to its first requests, and run its hot paths once
    over, before the heap is frozen: shared by every worker, not copied into each."""
    warmup.warm()


class Spawner:
    def __init__(self, home: Home, idle: float) -> None:
        self.home = home
        self.home_name = os.environ.get("AGENTTY_HOME") or str(home.root)  # as our processes'
        self.idle = idle  # environments name it (`spare.end_stopped_leftovers` looks for it)
        self.env = dict(os.environ)
        self.lock_fd = -1
        self.listener: socket.socket | None = None
        self.path = ""
        self.bound: FileIdentity | None = None  # our socket's (`paths.identity_of`)
        self.described: FileIdentity | None = None  # our `spawner.json`'s
        self.code: CodeWatch | None = None  # the code on disk, as the imports found it
        self.stepping_down = False
        self.middles = 0  # intermediate processes not reaped yet
        self.spare: socket.socket | None = None  # our end of the pair to the next worker
        self.no_spare_until = 0.0
        self.spare_pid: int | None = None  # known once it said it waits (settled, listening)
        self.maker: Maker | None = None
        self.model: tuple[int, int, float] | None = None  # pid, pidfd, when to learn from it

    # ------------------------------------------------------------- start and end

    def acquire(self) -> bool:
        """The home's spawner lock: handed over by the launcher (held since the launch), or
        taken here, waiting a moment for one that is stepping down."""
        path = self.home.root / spawning.LOCK_NAME
        handed = _handed_lock(path)
        if handed is not None:
            self.lock_fd = handed
            return True
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        self.lock_fd = os.open(path, flags, 0o600)
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            try:
                fcntl.flock(self.lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(0.02)

    def listen(self) -> None:
        path = self.home.spawner_socket()
        if path is None:
            raise OSError(errno.ENAMETOOLONG, "the spawner's socket path is too long")
        self.home.ensure_socket_dir()
        self.path = path
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # a dead spawner's: we hold the lock
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            sock.bind(path)
        finally:
            os.umask(old)
        os.chmod(path, 0o600)
        self.bound = identity_of(path)
        sock.listen(64)
        self.listener = sock

    def describe(self, *, ready: bool) -> None:
        """`spawner.json`: who we are, for `status`, `doctor` and `stop` (written once the
        lock is ours, so that even a spawner still importing can be found and ended)."""
        pid = os.getpid()
        data = {
            "pid": pid,
            "start": identity.start_token(pid),
            "since": now_iso(),
            "ready": ready,
            "socket": self.path or None,
            # its device and inode (`spawner_client._still_bound`)
            "bound": list(self.bound[:2]) if self.bound is not None else None,
            "idle": self.idle,
            "python": sys.executable,
            "version": __version__,
        }
        path = self.home.root / spawning.INFO_NAME
        tmp = path.with_name(f".{path.name}.{pid}")
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(tmp, flags, 0o600)
        try:
            try:
                os.write(fd, json.dumps(data).encode())
            finally:
                os.close(fd)
            os.replace(tmp, path)
            self.described = identity_of(path)
        except OSError:  # (a full disk): no half-written description is left behind
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def _description_is_ours(self) -> bool:
        """`status`, `doctor` and `stop` find us by `spawner.json`: replaced (by a directory,
        say), nobody could see or stop us."""
        return still_at(self.home.root / spawning.INFO_NAME, self.described)

    def _socket_is_ours(self) -> bool:
        """Callers find us by the path: unlinked or replaced, nobody can reach us."""
        return still_at(self.path, self.bound)

    def close(self) -> None:
        """Remove our socket and description (not a successor's: we still hold the lock)."""
        if self.maker is not None:
            self.maker.close()
            self.maker = None
        if self.model is not None:
            os.close(self.model[1])
            self.model = None
        self._drop_spare()
        if self.listener is not None:
            self.listener.close()
            if self._socket_is_ours():
                with contextlib.suppress(OSError):
                    os.unlink(self.path)
        if self._description_is_ours():  # (not what somebody put in its place)
            with contextlib.suppress(OSError):
                os.unlink(self.home.root / spawning.INFO_NAME)

    # ------------------------------------------------------------- serving

    def serve(self) -> None:
        """Serve until idle, stepping down, or stopped (only while waiting: what is under
        way, a spare taken from the maker say, is done first)."""
        with stopping.held():
            self._serve()

    def _serve(self) -> None:
        assert self.listener is not None
        last = time.monotonic()
        while not self.stepping_down:
            remaining = last + self.idle - time.monotonic()
            if remaining <= 0:
                _log("idle: exiting")
                return
            self.reap()
            self._teach_maker()
            wake = min(remaining, REAP_EVERY if self.middles else CHECK_EVERY)
            if self.model is not None:
                wake = max(0.0, min(wake, self.model[2] - time.monotonic()))
            if self.spare is None and self.no_spare_until > time.monotonic():
                wake = max(0.0, min(wake, self.no_spare_until - time.monotonic()))  # then fork
            if self._spare_wanted():
                self._fork_spare()
            with stopping.let_in():
                ready, _, _ = select.select([self.listener], [], [], wake)
            if not self._description_is_ours():  # (looked at busy or idle: an lstat)
                _log(f"{spawning.INFO_NAME} removed or replaced: exiting")
                return
            if not ready:
                if not self._socket_is_ours():
                    _log("socket removed or replaced: exiting")
                    return
                continue
            try:
                conn, _ = self.listener.accept()
            except OSError:
                continue
            with conn:
                try:
                    if self.handle(conn):
                        last = time.monotonic()  # (refusals do not keep it alive)
                except OSError as exc:
                    _log(f"request failed: {exc}")

    def _spare_wanted(self) -> bool:
        """None ready, none lately refused, and nobody waiting (a fork would delay them)."""
        assert self.listener is not None
        if self.spare is not None or time.monotonic() < self.no_spare_until:
            return False
        return not select.select([self.listener], [], [], 0)[0]

    def handle(self, conn: socket.socket) -> bool:
        """Serve one request; True if it was (handed to the spare or forked for), False if
        it was refused. OSError: it failed (the caller spawns directly)."""
        deadline = time.monotonic() + REQUEST_TIMEOUT
        conn.settimeout(REQUEST_TIMEOUT)
        cred = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
        peer_pid = int.from_bytes(cred[0:4], sys.byteorder, signed=True)
        if int.from_bytes(cred[4:8], sys.byteorder) != os.getuid():
            return False
        fds: list[int] = []  # closed below even when the caller stalls mid-request
        try:
            request, line = self._receive(conn, fds, deadline)
            conn.settimeout(REQUEST_TIMEOUT)  # for our answers (what is left may be ~0)
            failpoints.hit("spawner.request")
            if request is None or len(fds) not in (2, 3):
                self._refuse(conn, "malformed", "a malformed request")
                return False
            late = request.get("deadline")
            if isinstance(late, float) and time.monotonic() > late - LATE:
                self._refuse(conn, "late", "the caller stopped waiting")
                return False
            if self.code is None or self.code.changed():
                self._refuse(conn, "upgraded", "agentty or the interpreter changed on disk")
                self.stepping_down = True
                _log("code changed on disk: stepping down")
                return False
            if threading.active_count() != 1:
                self._refuse(conn, "threads", "the spawner is not single-threaded")
                self.stepping_down = True
                return False
            reason = forked.cannot_reproduce(request, peer_pid, self.env)
            if isinstance(reason, forked.Outgrown):
                # Ours from the caller that launched us: a spawner launched from this
                # caller (the successor it starts) serves it and every caller we serve.
                self._refuse(conn, "outgrown", reason)
                self.stepping_down = True
                _log(f"cannot serve a caller with {reason}: stepping down")
                return False
            if reason is not None:
                self._refuse(conn, "context", reason)
                return False
            if not self._to_spare(conn, line, fds):
                self._fork(conn, request, fds)
            return True
        finally:
            for fd in fds:
                os.close(fd)

    def _receive(
        self, conn: socket.socket, fds: list[int], deadline: float
    ) -> tuple[dict[str, object] | None, bytes]:
        """The request (parsed, and its line), all of it by `deadline` (TimeoutError: a
        caller sending a byte now and then must not hold us); the descriptors that came
        with it are added to `fds` as they arrive, so the caller closes them whatever
        happens (a caller that sends them and then stalls makes recvmsg time out after
        they were received)."""
        buf = b""
        while b"\n" not in buf and len(buf) < MAX_REQUEST:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("the request did not arrive in time")
            conn.settimeout(remaining)
            data, ancillary, _, _ = conn.recvmsg(1 << 16, socket.CMSG_SPACE(4 * MAX_FDS))
            for level, kind, payload in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    for i in range(0, len(payload) - len(payload) % 4, 4):
                        fds.append(int.from_bytes(payload[i : i + 4], sys.byteorder))
            if not data:
                break
            buf += data
        line = buf.split(b"\n", 1)[0] if b"\n" in buf else b""
        try:
            request = json.loads(line) if line else None
        except ValueError:
            request = None
        return (request, line) if isinstance(request, dict) else (None, b"")

    def _refuse(self, conn: socket.socket, reason: str, error: str) -> None:
        with contextlib.suppress(OSError):
            conn.sendall(
                json.dumps({"ok": False, "reason": reason, "error": error}).encode() + b"\n"
            )

    def _fork(self, conn: socket.socket, request: dict[str, object], fds: list[int]) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        middle = stopping.fork()
        if middle == 0:
            self._in_middle(conn, request, fds)  # never returns
        # Not waited for here: under load its exit can take a scheduling round, and the
        # next request would wait for it. It answers the caller itself (or, failing, its
        # exit closes the connection: the caller spawns directly); reaped in the loop.
        self.middles += 1
        # Its pid, for the caller to watch (stopped, it is given up on at once). Said after
        # the fork, so its answer may come first: the caller takes the first line that is
        # not this one, and ignores what follows (and may have closed the connection: the
        # request is served all the same).
        with contextlib.suppress(OSError):
            _taken(conn, middle)

    def reap(self) -> None:
        """Reap the intermediate processes that exited; kill one that is stopped (it lives a
        millisecond: stopped, it would hold its request, and its spare, forever)."""
        while self.middles:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG | os.WUNTRACED)
            except ChildProcessError:
                self.middles = 0
                return
            if pid == 0:
                return
            maker = self.maker is not None and pid == self.maker.pid
            if os.WIFSTOPPED(status):
                if not maker:  # (a stopped maker stops answering: dropped then)
                    _kill_stopped_child(pid)
                continue
            if maker:
                assert self.maker is not None
                self.maker.reaped()  # died: its next answer fails, and spares are forked here
                continue
            self.middles -= 1

    def _in_middle(self, conn: socket.socket, request: dict[str, object], fds: list[int]) -> None:
        """The intermediate process: fork the worker, tell the caller its pid and pidfd
        (race-free: it is our child until we exit), exit."""
        code = 1
        try:
            comm = self._become_middle()
            failpoints.hit("spawner.middle")
            pid = stopping.fork()
            if pid == 0:
                spare.name(comm)  # the worker's own again
                self._in_worker(conn, request, fds)  # never returns
            pidfd = os.pidfd_open(pid)
            for fd in fds:
                os.close(fd)
            reply = json.dumps({"ok": True, "pid": pid}).encode() + b"\n"
            rights = pidfd.to_bytes(4, sys.byteorder)
            conn.sendmsg([reply], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, rights)])
            code = 0
        finally:
            os._exit(code)

    def _to_spare(self, conn: socket.socket, line: bytes, fds: list[int]) -> bool:
        """Hand the request to the spare; False if there is none or it cannot take it."""
        end = self.spare
        if end is None:
            return False
        if self.spare_pid is None:  # still settling (a loaded machine): the request is
            try:  # forked for, and the spare kept for a later one
                self.spare_pid = spare.read_ready(end.recv(16))
            except BlockingIOError:
                return False
            except OSError:
                self.spare_pid = None
            if self.spare_pid is None:  # gone: its end of file
                end.close()
                self.spare = None
                return False
        _taken(conn, self.spare_pid)
        if spare.hand_over(end, line, conn, fds):
            pid, self.spare, self.spare_pid = self.spare_pid, None, None
            self.no_spare_until = time.monotonic() + SPARE_AFTER
            end.close()
            self._keep_as_model(pid)
            return True
        self._drop_spare()  # stopped, say (its buffer full): it must not outlive us either
        self.no_spare_until = time.monotonic() + SPARE_BACKOFF
        _log("the spare could not take a request: forking for each for a while")
        return False

    def _keep_as_model(self, pid: int) -> None:
        """The first worker a spare became, for the maker to learn from once it started."""
        if self.maker is None or self.maker.taught or self.model is not None:
            return
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            return  # gone already (a start that failed): the next one
        self.model = (pid, pidfd, time.monotonic() + LEARN_AFTER)

    def _teach_maker(self) -> None:
        """Once the model has started: the maker learns its pages, and the spare forked
        before it knew them makes way for one that copies them (its end of file ends it)."""
        if self.model is None or time.monotonic() < self.model[2]:
            return
        pid, pidfd, _ = self.model
        self.model = None
        try:
            if self.maker is None or select.select([pidfd], [], [], 0)[0]:
                return  # ended already: the next worker a spare becomes is the model
            try:
                self.maker.learn(pid, pidfd)
            except OSError as exc:
                self._drop_maker(exc)
                return
            self._drop_spare()
        finally:
            os.close(pidfd)

    def _drop_spare(self) -> None:
        """Let the spare go (not handed a request: nothing of a session is in it). Its end
        of file ends it, unless it cannot read it: a stopped spare would wait forever,
        owned by nobody, so it is killed, through a pidfd taken while its end of our pair
        was still open (the spare alive then: the pidfd is its, never that of another
        process which took the pid of a spare that died)."""
        end, pid = self.spare, self.spare_pid
        self.spare = self.spare_pid = None
        if end is None:
            return
        if pid is None:  # it may have said it waits since we last looked
            with contextlib.suppress(OSError):
                pid = spare.read_ready(end.recv(16))
        if pid is None and _peer_open(end):  # never said who it is: stopped, it is found
            end.close()  # by its name and state, as the next spawner would find it
            spare.end_stopped_leftovers(self.home_name, makers=False)
            return
        pidfd = -1
        if pid is not None:
            with contextlib.suppress(OSError):
                pidfd = os.pidfd_open(pid)
            if pidfd >= 0 and not _peer_open(end):
                os.close(pidfd)  # it died before: the pid may be another process's by now
                pidfd = -1
        end.close()
        if pidfd >= 0:
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            os.close(pidfd)

    def _drop_maker(self, exc: OSError) -> None:
        _log(f"the spare maker failed ({exc}): forking spares here")
        assert self.maker is not None
        self.maker.close()
        self.maker = None

    def _fork_spare(self) -> None:
        """The next request's worker, made while nobody waits: by the maker, or here."""
        if self.maker is None:
            end = self.new_spare()
        else:
            try:
                end = self.maker.spare()
            except OSError as exc:
                self._drop_maker(exc)
                end = self.new_spare()
        failpoints.hit("spawner.spare_received")
        if end is None:
            self.no_spare_until = time.monotonic() + SPARE_BACKOFF
            return
        end.setblocking(False)
        self.spare, self.spare_pid = end, None

    def new_spare(self) -> socket.socket | None:
        """Fork a spare (double, as any worker); our end of its pair, None if we cannot."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            failpoints.hit("spawner.fork_spare")
            middle = stopping.fork()
        except OSError as exc:
            ours.close()
            theirs.close()
            _log(f"cannot fork a spare: {exc}")
            return None
        if middle == 0:
            code = 1
            try:
                os.close(ours.detach())  # the spawner's end: its close must end the spare
                comm = self._become_middle()
                failpoints.hit("spawner.middle")
                if stopping.fork() == 0:
                    spare.name(comm)  # the spare's (then its worker's) own again
                    self._as_spare(theirs)  # never returns
                code = 0
            finally:
                os._exit(code)
        theirs.close()
        self.middles += 1
        return ours

    def start_maker(self) -> None:
        """Fork the spare maker (`worker/maker.py`), once the heap is frozen."""
        self.maker = Maker.fork(self._spare_in_maker, self._forget_in_maker)

    def _spare_in_maker(self) -> socket.socket | None:
        end = self.new_spare()
        while self.middles:  # it exits once it forked the spare: reaped at once
            try:
                pid, status = os.waitpid(-1, os.WUNTRACED)
            except ChildProcessError:
                self.middles = 0
                break
            if os.WIFSTOPPED(status):  # its spare's end closes with it: none this time
                _kill_stopped_child(pid)
                continue
            self.middles -= 1
        return end

    def _forget_in_maker(self) -> None:
        """What only the spawner may hold: its listening socket, the home's lock and its
        watch on the code."""
        if self.listener is not None:
            self.listener.close()
            self.listener = None
        if self.code is not None:
            self.code.close()
        os.close(self.lock_fd)
        self.lock_fd = -1

    def _become_middle(self) -> str:
        """In an intermediate process, at once: close what only the spawner may hold (its
        lock, listening socket, watch on the code, its ends of the spare's and the maker's
        pairs, the model's pidfd), so that stopped it holds none of them, and take its own
        command name; the one it had (the spawner's, or the maker's)."""
        if self.lock_fd >= 0:
            os.close(self.lock_fd)
            self.lock_fd = -1
        control = self.maker.control if self.maker is not None else None
        for sock in (self.listener, self.spare, control):
            if sock is not None:
                os.close(sock.detach())
        self.listener = self.spare = self.maker = None
        if self.model is not None:
            os.close(self.model[1])
            self.model = None
        if self.code is not None:
            self.code.close()
        return spare.name(spawning.MIDDLE_NAME)

    def _as_spare(self, end: socket.socket) -> None:
        """Wait for the request in the spare (`worker/spare.py`), then be its worker."""
        try:
            self._forget_sockets()
            comm = spare.settle(end.fileno())
            failpoints.hit("spare.settled")
            end.sendall(spare.ready_note())
            prefault.populate_while_idle(prefault.learnt, end.fileno())
            job = spare.wait_for_request(end)
            end.close()
            if job is None or not job[1]:
                os._exit(0)  # the spawner is gone
            line, (conn_fd, *fds) = job
            failpoints.hit("spare.request")
            request = json.loads(line)
            if not spare.answer(conn_fd):
                os._exit(1)  # the caller is gone: it goes the full way
            spare.name(comm)
        except BaseException:
            os._exit(1)
        self._become_worker(request, fds, new_session=False)

    def _forget_sockets(self) -> None:
        """In a forked child: the spawner's socket objects must not close, when collected,
        descriptor numbers the child reuses."""
        control = self.maker.control if self.maker is not None else None
        for sock in (self.listener, self.spare, control):
            if sock is not None:
                sock.detach()
        self.listener = self.spare = self.maker = None

    def _in_worker(self, conn: socket.socket, request: dict[str, object], fds: list[int]) -> None:
        conn.detach()
        self._forget_sockets()
        self._become_worker(request, fds, new_session=True)

    def _become_worker(
        self, request: dict[str, object], fds: list[int], *, new_session: bool
    ) -> NoReturn:
        code = 1
        try:
            forked.become(request, fds, new_session=new_session)
            gc.enable()
            if "start" in request:  # the `start` fast lane: the caller's part is ours too
                code = forked.start_session(request["start"])
            else:
                code = worker_main.main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            import traceback

            with contextlib.suppress(Exception):
                traceback.print_exc()
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)


def _peer_open(end: socket.socket) -> bool:
    """Is the other end of our pair still open (its process alive)? At once: a timeout the
    socket has (`spare.hand_over` sets one) would make a live peer look gone."""
    end.setblocking(False)
    try:
        return end.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b""
    except BlockingIOError:
        return True  # open, nothing to read
    except OSError:
        return False


def _handed_lock(path: Path) -> int | None:
    """The lock the launcher took for us (`spawner_client.launch`), if it is that file's and
    held; its descriptor, no longer inheritable (no worker may keep it)."""
    named = os.environ.pop(spawning.LOCK_FD_ENV, None)
    if named != str(spawning.LOCK_FD):
        return None
    fd = spawning.LOCK_FD
    try:
        here, there = os.fstat(fd), os.stat(path, follow_symlinks=False)
        if (here.st_dev, here.st_ino) != (there.st_dev, there.st_ino):
            raise OSError("not the home's lock")
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # ours already: returns at once
        os.set_inheritable(fd, False)
    except OSError:
        with contextlib.suppress(OSError):
            os.close(fd)
        return None
    return fd


def _kill_stopped_child(pid: int) -> None:
    """SIGKILL our stopped child `pid` (not reaped yet: the pid cannot be another's)."""
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)


def _idle_setting(raw: str | None) -> float:
    """`AGENTTY_SPAWNER_IDLE`: a positive number of seconds; IDLE for anything else (NaN,
    infinity, zero or less, not a number)."""
    try:
        idle = float(raw) if raw is not None else IDLE
    except ValueError:
        return IDLE
    return idle if math.isfinite(idle) and idle > 0 else IDLE


def _taken(conn: socket.socket, answerer: int) -> None:
    """Tell the caller its request is being served, and by whom (`spawning.read_answer`):
    from here the work is that process's, and the caller watches it instead of us."""
    conn.sendall(json.dumps({spawning.TAKEN: answerer}).encode() + b"\n")


def _on_term(signum: int, frame: object) -> None:
    raise SystemExit(0)


def main() -> int:
    home = Home(Path(os.environ.get("AGENTTY_HOME") or spawning.home_root()))
    idle = _idle_setting(os.environ.get("AGENTTY_SPAWNER_IDLE"))
    os.environ.pop("AGENTTY_STATUS_FD", None)
    signal.signal(signal.SIGTERM, _on_term)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    before = forked.fingerprint(forked.code_paths())  # agentty's files before the imports
    spawner = Spawner(home, idle)
    if not spawner.acquire():
        return 0  # another one runs
    # The home is ours now: what a spawner killed outright left stopped is nobody's.
    spare.end_stopped_leftovers(spawner.home_name)
    try:
        spawner.describe(ready=False)  # (an OSError here or below: one log line, exit 1)
        try:
            _warm()
            forked.preload()
            worker_main.prepare_logging()
        except Exception as exc:  # a broken installation: workers spawned directly say why
            _log(f"cannot import what a worker needs ({type(exc).__name__}: {exc}): exiting")
            return 1
        spawner.code = CodeWatch(forked.code_paths())
        if any(spawner.code.mark.get(path) != mark for path, mark in before.items()):
            _log("code changed while importing: not starting")
            return 0
        # Imported: the launcher's directory is nothing to us (every path we use is
        # absolute; a worker goes to its caller's), and kept it would stay busy (a mount).
        with contextlib.suppress(OSError):
            os.chdir("/")
        failpoints.hit("spawner.listen")
        spawner.listen()
        spawner.describe(ready=True)
        warmup.freeze()
        spawner.start_maker()
        _log(f"ready on {spawner.path} (idle exit after {idle:g}s)")
        spawner.serve()
    except SystemExit:
        pass
    except OSError as exc:  # its socket or description cannot be made (a full disk, say):
        _log(f"cannot serve ({exc}): exiting")  # starts spawn directly meanwhile
        return 1
    finally:
        with stopping.held():  # (a second stop must not cut the clean-up short)
            spawner.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
