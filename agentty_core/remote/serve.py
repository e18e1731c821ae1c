"""`agentty _serve`: the far end of a host's link (`remote/linkd.py`), run over ssh.

A `--host` call over plain ssh pays, on the remote side, for a shell, an interpreter and
agentty's imports: most of its cost. This process pays them once. It has imported the CLI,
reads requests from stdin and answers on stdout, newline-delimited JSON:

    {"id": 7, "argv": ["get", "-s", "py"], "stdin": "<base64>"?}
    {"id": 7, "rc": 0, "out": "<base64>", "err": "<base64>"}
    {"cancel": 7}                  (the caller went away: the command is ended)
    {"beat": 1}                    (every BEAT seconds while a request runs or comes in)

Each request runs in a child forked from this warm process (forked ahead, after the previous
answer, and primed while it waits): requests are independent (one command's state never
leaks into the next) and run concurrently (a long `wait` holds up nothing). The child runs
the same entry point as `agentty ARGV` with stdout and stderr in memory files, then writes
its answer to the channel itself (under a record lock: one answer line at a time), so the
answer's bytes and exit code are exactly the command's own, with no hop through this
process. The first line out is a greeting: {"hello": 1, "version": ..., "pid": ...}.

It exits when its stdin closes (the link or its ssh went away) and the commands running
have answered. Once agentty changed on disk it refuses every request (`{"id": N,
"refused": "upgraded"}`: the caller goes the ssh way, and the link ends), so an upgrade
there is picked up by the next link, never served by old code.
"""

from __future__ import annotations

import binascii
import contextlib
import fcntl
import gc
import json
import os
import selectors
import signal
import sys
import time
import traceback
from collections.abc import Callable

from agentty_core._version import __version__

VERSION = 1
CHUNK = 1 << 16
REAP_EVERY = 0.05  # seconds: how soon a child that answered is reaped
# Seconds between `{"beat": 1}` lines while requests run: the link's sign that this process
# still serves (its own heartbeats to callers say only that the link lives).
BEAT = 1.0


def _b64(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def _code_marks() -> list[tuple[str, tuple[int, int, int] | None]]:
    """What changes when agentty is installed over or edited: its package directories and
    its version file (a few stats, not one per file: this runs before every request)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # agentty_core/
    paths = [root, os.path.join(root, "_version.py"), os.path.realpath(sys.executable)]
    for entry in sorted(os.listdir(root)):
        path = os.path.join(root, entry)
        if os.path.isdir(path) and entry != "__pycache__":
            paths.append(path)
    marks: list[tuple[str, tuple[int, int, int] | None]] = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            marks.append((path, None))
        else:
            marks.append((path, (st.st_ino, st.st_size, st.st_mtime_ns)))
    return marks


class _Job:
    """One request's child, forked ahead: its pid, the pipe its request goes down, and its
    status pipe (`sent` once it wrote its own answer; EOF alone if it died first)."""

    def __init__(self, pid: int, request_fd: int, status_fd: int) -> None:
        self.rid: object = None
        self.pid = pid
        self.request_fd = request_fd
        self.status_fd = status_fd
        self.status = b""


class Server:
    def __init__(
        self,
        run: Callable[[list[str]], int],
        chan_in: int,
        chan_out: int,
        prime: Callable[[], None] = lambda: None,
    ) -> None:
        self.run = run
        self.prime = prime
        self.chan_in = chan_in
        self.chan_out = chan_out
        # Children write their answers to the channel themselves, one at a time: a POSIX
        # record lock (per process, so inherited descriptors still exclude each other).
        self.lock_fd = os.memfd_create("lock") if hasattr(os, "memfd_create") else _tmp()
        self.sel = selectors.DefaultSelector()
        self.jobs: dict[int, _Job] = {}  # by status fd
        self.by_id: dict[object, _Job] = {}
        self.marks = _code_marks()
        self.upgraded = False
        self.buf = bytearray()  # a request's line so far (a large stdin: grown in place)
        self.unreaped: set[int] = set()
        self.spare: _Job | None = None

    def send(self, message: dict[str, object], *, prefix: bytes = b"", wait: bool = True) -> None:
        """One line on the channel, under the lock the children answer under. Not `wait`:
        not at all while a child writes (a beat: the child's bytes say as much, and this
        process must not wait behind a large answer: it reads the requests)."""
        data = prefix + json.dumps(message, separators=(",", ":")).encode() + b"\n"
        try:
            fcntl.lockf(self.lock_fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # (held: EACCES or EAGAIN; a waiting lock does not fail so)
            if wait:
                raise
            return
        try:
            _write_all(self.chan_out, data)
        finally:
            fcntl.lockf(self.lock_fd, fcntl.LOCK_UN)

    def serve(self) -> int:
        self.fork()
        self.send({"hello": VERSION, "version": __version__, "pid": os.getpid(), "beat": BEAT})
        self.sel.register(self.chan_in, selectors.EVENT_READ)
        reading = True
        try:
            return self._loop(reading)
        finally:
            if self.spare is not None:
                os.close(self.spare.request_fd)  # it reads EOF and exits

    def _loop(self, reading: bool) -> int:
        beat_due = time.monotonic() + BEAT
        while reading or self.jobs:
            self.reap()
            timeout = REAP_EVERY if self.unreaped else None
            if self.jobs or self.buf:  # requests running, or one on its way in
                now = time.monotonic()
                if now >= beat_due:
                    self.send({"beat": 1}, wait=False)
                    beat_due = now + BEAT
                timeout = min(timeout or BEAT, max(0.0, beat_due - now))
            else:
                beat_due = time.monotonic() + BEAT  # the first beat a BEAT after a request
            for key, _ in self.sel.select(timeout):
                fd = key.fd
                if fd == self.chan_in:
                    data = os.read(fd, CHUNK)
                    if not data:  # the link is done: answer what runs, then exit
                        self.sel.unregister(self.chan_in)
                        reading = False
                        continue
                    searched = len(self.buf)  # only the new bytes can end a line
                    self.buf += data
                    while (end := self.buf.find(b"\n", searched)) >= 0:
                        line = bytes(self.buf[:end])
                        del self.buf[: end + 1]
                        searched = 0
                        self.request(line)
                else:
                    self.drain(fd)
        return 0

    def request(self, line: bytes) -> None:
        try:
            message = json.loads(line)
        except (ValueError, RecursionError):
            return
        if not isinstance(message, dict):
            return
        if "cancel" in message:
            job = self.by_id.get(message["cancel"])
            if job is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(job.pid, signal.SIGTERM)
            return
        rid = message.get("id")
        argv = message.get("argv")
        stdin = message.get("stdin")
        if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
            self.send({"id": rid, "refused": "malformed"})
            return
        if self.upgraded or _code_marks() != self.marks:
            self.upgraded = True  # the next link starts the new code
            self.send({"id": rid, "refused": "upgraded"})
            return
        if self.spare is None:
            self.fork()
        job, self.spare = self.spare, None
        assert job is not None
        request: dict[str, object] = {"id": rid, "argv": argv, "stdin": stdin}
        # A pipe holds 64 KiB, a bigger stdin is read by the child meanwhile; a child that
        # died (EPIPE) is answered for when its status pipe ends.
        with contextlib.suppress(OSError):
            _write_all(job.request_fd, json.dumps(request).encode() + b"\n")
        os.close(job.request_fd)
        job.rid = rid
        self.jobs[job.status_fd] = job
        self.sel.register(job.status_fd, selectors.EVENT_READ)
        self.by_id[rid] = job

    def fork(self) -> None:
        """The next request's child, forked ahead (off the answer's path), waiting for it."""
        request_r, request_w = os.pipe()
        status_r, status_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            for fd in (request_w, status_r):
                os.close(fd)
            self.child(request_r, status_w)  # never returns
        for fd in (request_r, status_w):
            os.close(fd)
        self.spare = _Job(pid, request_w, status_r)

    def reap(self) -> None:
        for pid in list(self.unreaped):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                self.unreaped.discard(pid)

    def drain(self, fd: int) -> None:
        job = self.jobs[fd]
        data = os.read(fd, CHUNK)
        if data:
            job.status += data
            return
        self.sel.unregister(fd)
        os.close(fd)
        del self.jobs[fd]
        self.by_id.pop(job.rid, None)
        if job.status == b"sent":  # it answered, before its own teardown
            self.unreaped.add(job.pid)
        else:  # it died first (a signal, cancelled say): its exit status says how
            _, wait_status = os.waitpid(job.pid, 0)
            code = os.waitstatus_to_exitcode(wait_status)
            rc = code if code >= 0 else 128 - code  # as the remote shell reports a signal
            # A child killed while writing its answer left part of a line: end it (the
            # link skips what is not JSON), so this answer is a line of its own.
            self.send({"id": job.rid, "rc": rc, "out": "", "err": ""}, prefix=b"\n")
        if self.spare is None and not self.upgraded:
            self.fork()  # after this answer, not on the next one's path

    def child(self, request_fd: int, status_w: int) -> None:
        """In the forked child: wait for a request, run the command as `agentty ARGV`
        would with its stdout and stderr in memory, write the answer, exit."""
        code = 1
        rid: object = None
        out_m = err_m = -1
        try:
            self.sel.close()
            for fd in [self.chan_in, *self.jobs]:
                with contextlib.suppress(OSError):
                    os.close(fd)
            # While it waits: the first run of the hot paths, which copies the pages
            # their objects' reference counts touch (~1 ms, then off the request's path).
            with contextlib.suppress(Exception):
                self.prime()
            chunks = []
            while chunk := os.read(request_fd, CHUNK):
                chunks.append(chunk)
            os.close(request_fd)
            try:
                request = json.loads(b"".join(chunks))
            except (ValueError, RecursionError):
                os._exit(0)  # no request came: the server ended
            rid, argv, stdin = request["id"], request["argv"], request["stdin"]
            data = binascii.a2b_base64(stdin) if isinstance(stdin, str) else None
            if data is None:
                stdin = os.open(os.devnull, os.O_RDONLY)
            else:
                stdin = _memory("stdin")
                os.write(stdin, data)
                os.lseek(stdin, 0, os.SEEK_SET)
            out_m, err_m = _memory("stdout"), _memory("stderr")
            os.dup2(stdin, 0)
            os.dup2(out_m, 1)
            os.dup2(err_m, 2)
            os.close(stdin)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGHUP, signal.SIG_DFL)
            gc.enable()
            sys.argv[1:] = argv
            code = self.run(argv)
        except SystemExit as exc:
            if exc.code is None:
                code = 0
            elif isinstance(exc.code, int):
                code = exc.code
            else:
                with contextlib.suppress(Exception):
                    print(exc.code, file=sys.stderr)
                code = 1
        except KeyboardInterrupt:
            code = 130
        except BaseException:
            with contextlib.suppress(Exception):
                traceback.print_exc()
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            code &= 0xFF
            with contextlib.suppress(Exception):
                if out_m >= 0:
                    answer = {"id": rid, "rc": code, "out": _b64(_read_back(out_m))}
                    answer["err"] = _b64(_read_back(err_m))
                    # A cancel (SIGTERM) must not cut the line short: held while it is written.
                    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
                    self.send(answer)
                    os.write(status_w, b"sent")
            os._exit(code)


def _memory(name: str) -> int:
    return os.memfd_create(name) if hasattr(os, "memfd_create") else _tmp()


def _read_back(fd: int) -> bytes:
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(fd, CHUNK):
        chunks.append(chunk)
    return b"".join(chunks)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _tmp() -> int:
    import tempfile

    with tempfile.TemporaryFile() as f:  # unlinked: the descriptor is all there is
        return os.dup(f.fileno())


def main(
    run: Callable[[list[str]], int],
    warm: Callable[[], None],
    prime: Callable[[], None] = lambda: None,
) -> int:
    """Serve requests on stdin/stdout with `run` (the CLI's entry point) until stdin closes;
    `warm` imports what the commands need, once, before the first fork; `prime` runs in
    each child forked ahead while it waits for its request (no side effects)."""
    chan_in, chan_out = os.dup(0), os.dup(1)  # not inherited by children or their programs
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)  # a stray print must not corrupt the channel
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    warm()
    gc.collect()
    gc.freeze()  # the warm heap stays shared with every child
    try:
        return Server(run, chan_in, chan_out, prime).serve()
    except BrokenPipeError:
        return 0
