"""A forked worker's pidfd has one owner at a time: never closed under a thread that waits.

The reaper thread of `launch` waits on the pidfd while the caller may poll the same worker.
A poll that saw the exit used to close the descriptor at once; a waiter that had read its
number but not yet entered `select` then watched whatever took that number next (a pipe
here: it hangs, even after the exit; nothing at all: EBADF). The interleaving is forced for
real: the waiting thread is held at its `select` line by a trace function until the poll
is done."""

from __future__ import annotations

import linecache
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from types import FrameType

from agentty_core.launch.spawner_client import ForkedWorker

Tracer = Callable[[FrameType, str, object], object]


def held_at_select(at: threading.Event, go: threading.Event) -> Tracer:
    """A trace function that stops its thread right before `_exited` enters `select`."""
    code = ForkedWorker._exited.__code__

    def local(frame: FrameType, event: str, arg: object) -> object:
        line = linecache.getline(code.co_filename, frame.f_lineno)
        if event == "line" and "select.select(" in line:
            at.set()
            go.wait(10)
        return local

    def calls(frame: FrameType, event: str, arg: object) -> object:
        return local if frame.f_code is code else None

    return calls


def test_a_poll_never_closes_the_pidfd_a_waiter_is_about_to_watch() -> None:
    child = subprocess.Popen(["sleep", "1000000"])
    spec_r, spec_w = os.pipe()
    worker = ForkedWorker(child.pid, spec_w, spec_r, os.pidfd_open(child.pid))
    at, go = threading.Event(), threading.Event()
    outcome: list[object] = []

    def waiter() -> None:
        sys.settrace(held_at_select(at, go))  # type: ignore[arg-type]
        try:
            outcome.append(worker.wait())  # no timeout, as the reaper thread waits
        except Exception as exc:  # the defect shows as WorkerTimeout or EBADF
            outcome.append(exc)
        finally:
            sys.settrace(None)

    thread = threading.Thread(target=waiter)
    reused_r = reused_w = -1
    try:
        thread.start()
        assert at.wait(10), "the waiter never reached its select"
        child.kill()
        child.wait()
        assert worker.poll() == 0  # it saw the exit while the waiter holds the number
        reused_r, reused_w = os.pipe()  # takes the lowest free numbers, as any thread might
        go.set()
        thread.join(10)
        assert not thread.is_alive(), "the waiter watches a descriptor that is not its pidfd"
        assert outcome == [0], outcome
        assert worker.pidfd == -1  # closed once, by the last one watching it
        os.fstat(reused_r)  # and nobody closed the descriptors that came after it
    finally:
        go.set()
        if reused_w >= 0:
            os.close(reused_w)  # EOF wakes a waiter stuck on the pipe
            reused_w = -1
        thread.join(10)
        child.kill()
        child.wait()
        for fd in (spec_r, spec_w, reused_r, reused_w):
            if fd >= 0:
                os.close(fd)
