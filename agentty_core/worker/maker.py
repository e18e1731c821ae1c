"""The spare maker: a pristine copy of the warm spawner whose one job is to fork spares.

A spare (`worker/spare.py`) shares its pages with the process it was forked from until
either writes them. Forked by the spawner, it waited while the spawner served the request
it was then handed: accepting it, parsing it, checking the caller and the code on disk.
Every page the spawner wrote meanwhile became the spare's own (measured: its private memory
grew by 0.7 MiB while it waited). The maker is forked once, right after the spawner froze
its heap, and between two spares it only waits for the spawner's next word. Measured on
idle workers, side by side: 5.21 MiB private each when forked by the spawner, 5.09 when
forked by the maker (the spare's own start-up and the maker's few writes remain).

On the socket pair between them, the spawner asks with one byte; the maker forks a spare
(double, as the spawner would: `Spawner.new_spare`) and answers with that byte and the
spawner's end of the spare's pair, or with NONE when the fork failed. Anything else (no
answer within `ANSWER_WAIT`, an end of file) means the maker is gone, and the spawner
forks spares itself again. Once, the spawner sends LEARN with a pidfd of a worker that has
started: the maker learns the pages it wrote (`worker/prefault.py`), and every spare forked
afterwards copies them before its request comes; no answer. The maker
ends with the spawner: at its end of file, and by PR_SET_PDEATHSIG if it is killed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
from collections.abc import Callable

from agentty_core.proc.ptyhost import die_with_parent
from agentty_core.worker import prefault, spare, stopping

NAME = "agentty-maker"  # its command name (`ps`, tests)
ASK = b"s"
LEARN = b"l"  # then the worker's pid (4 bytes), its pidfd alongside
NONE = b"n"  # no spare this time (a fork failed): asked again later
ANSWER_WAIT = 0.25  # a fork takes ~1 ms: a maker this late is stopped or wedged


class Maker:
    """The spawner's handle on its maker."""

    def __init__(self, pid: int, control: socket.socket) -> None:
        self.pid: int | None = pid  # None once reaped: never a number that may be reused
        self.control = control
        self.taught = False  # sent LEARN (once: the pages are the same for every worker)

    @classmethod
    def fork(
        cls, new_spare: Callable[[], socket.socket | None], forget: Callable[[], None]
    ) -> Maker | None:
        """Fork the maker; None if it cannot be (the spawner forks spares itself).
        `new_spare` makes one spare in the maker; `forget` drops, in the maker, what only
        the spawner may hold (its listening socket, its lock)."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        parent = os.getpid()
        try:
            pid = stopping.fork()
        except OSError:
            ours.close()
            theirs.close()
            return None
        if pid == 0:
            code = 1
            try:
                os.close(ours.detach())  # the spawner's end
                forget()
                _serve(theirs, new_spare, parent)
                code = 0
            finally:
                os._exit(code)
        theirs.close()
        return cls(pid, ours)

    def spare(self) -> socket.socket | None:
        """Our end of a new spare's pair; None if the maker could not fork one this time.
        OSError if it did not answer as it should: it is gone, stopped or wedged."""
        self.control.settimeout(ANSWER_WAIT)
        self.control.sendall(ASK)
        said, fds, _, _ = socket.recv_fds(self.control, len(ASK), 1)
        if said == ASK and len(fds) == 1:
            return socket.socket(fileno=fds[0])
        for fd in fds:
            os.close(fd)
        if said == NONE and not fds:
            return None
        raise OSError("it is gone" if not said else f"it answered {said!r}")

    def learn(self, pid: int, pidfd: int) -> None:
        """Have the maker learn the pages worker `pid` wrote; spares forked after it copy
        them while they wait. OSError if the maker is gone."""
        self.control.settimeout(ANSWER_WAIT)
        self.taught = True
        socket.send_fds(self.control, [LEARN + pid.to_bytes(4, sys.byteorder)], [pidfd])

    def reaped(self) -> None:
        """The spawner reaped us among its children: we are gone."""
        self.pid = None

    def close(self) -> None:
        """End the maker (a stopped one too) and reap it."""
        self.control.close()
        if self.pid is None:
            return
        with contextlib.suppress(OSError):
            os.kill(self.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)
        self.pid = None


def _serve(
    control: socket.socket, new_spare: Callable[[], socket.socket | None], parent: int
) -> None:
    """The maker's life: a spare for each byte asked, until the spawner is gone."""
    die_with_parent()
    if os.getppid() != parent:
        return  # it died before we could ask to die with it
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the spawner's handler raises
    spare.worker_comm = spare.name(NAME)  # the name spares give their workers back
    control.settimeout(None)
    while True:
        said, fds, _, _ = socket.recv_fds(control, len(ASK), 1)
        if said == LEARN and len(fds) == 1:
            _learn(control, fds[0])
            continue
        for fd in fds:
            os.close(fd)
        if said != ASK:
            return
        end = new_spare()
        if end is None:
            control.sendall(NONE)
            continue
        with end:
            socket.send_fds(control, [ASK], [end.fileno()])


def _learn(control: socket.socket, pidfd: int) -> None:
    """LEARN's pid follows its first byte; the pages are kept for every later spare."""
    try:
        pid = b""
        while len(pid) < 4:
            chunk = control.recv(4 - len(pid))
            if not chunk:
                return
            pid += chunk
        runs = prefault.learn(int.from_bytes(pid, sys.byteorder), pidfd)
        if runs is not None and prefault.prepare():
            prefault.learnt = runs
    finally:
        os.close(pidfd)
