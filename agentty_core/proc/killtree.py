"""Ending a session's whole process tree, and confirming it is gone.

The ladder is tmux's and systemd's: SIGHUP, a grace period, SIGTERM with SIGCONT (a stopped
process does not act on SIGTERM), another grace period, SIGKILL, then wait until nothing is
left. Targets are re-enumerated every round, since processes fork while being killed. Every
signal goes through a psutil handle, which refuses a pid whose start time changed, so a
recycled pid is never signalled.

The ladder is a generator that yields a `Pause`: until a deadline or until one of the
processes it signalled ends, whichever comes first. The worker waits for that on its event
loop (it keeps serving other clients meanwhile), the CLI with `poll`; both watch pidfds, so
the end is confirmed the moment the last process is gone, not on a polling tick. Where pidfds
are not available (Linux < 5.3, another OS) a pause is a short sleep, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import signal
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field

import psutil

from agentty_core import failpoints

POLL = 0.02  # a pause without pidfds: sleep this long, then look again
RECHECK = 0.25  # a pause with pidfds: look again after this long all the same (a pid that
# ended and was reused before its pidfd was opened, a process forked since the last look)


@dataclass(frozen=True)
class Pause:
    """Wait `seconds`, or less: until one of `pids` has ended."""

    seconds: float
    pids: tuple[int, ...]


def _pidfds(pids: tuple[int, ...]) -> list[int] | None:
    """A pidfd per pid; [] if one has ended already; None without pidfd support."""
    fds: list[int] = []
    for pid in pids:
        try:
            fds.append(os.pidfd_open(pid))
        except ProcessLookupError:
            _close(fds)
            return []
        except (OSError, AttributeError):  # ENOSYS, EMFILE, no os.pidfd_open (not Linux)
            _close(fds)
            return None
    return fds


def _close(fds: list[int]) -> None:
    for fd in fds:
        os.close(fd)


def pause_sync(pause: Pause) -> None:
    """Block until the pause is over (see `Pause`)."""
    fds = _pidfds(pause.pids) if pause.pids else None
    if fds is None:
        time.sleep(min(pause.seconds, POLL))
        return
    try:
        if fds:
            poller = select.poll()
            for fd in fds:
                poller.register(fd, select.POLLIN)
            poller.poll(max(1, int(min(pause.seconds, RECHECK) * 1000)))
    finally:
        _close(fds)


async def pause_async(pause: Pause) -> None:
    """`pause_sync` on the running event loop."""
    fds = _pidfds(pause.pids) if pause.pids else None
    if fds is None:
        await asyncio.sleep(min(pause.seconds, POLL))
        return
    loop = asyncio.get_running_loop()
    ended: asyncio.Future[None] = loop.create_future()

    def one_ended() -> None:
        if not ended.done():
            ended.set_result(None)

    try:
        if fds:
            for fd in fds:
                loop.add_reader(fd, one_ended)
            await asyncio.wait({ended}, timeout=min(pause.seconds, RECHECK))
    finally:
        for fd in fds:
            loop.remove_reader(fd)
        _close(fds)


@dataclass
class KillResult:
    escalated: list[str] = field(default_factory=list)
    survivors: list[int] = field(default_factory=list)


def group_members(pgid: int) -> list[psutil.Process]:
    """Processes whose process group or session is `pgid` (a session leader's pid).

    `tcgetpgrp` answers 0 for a terminal no session has claimed yet, and in a PID namespace
    every process whose group lies outside it reports group and session 0: asking for group 0
    (or 1) would name init and the sandbox around us, so it names nothing."""
    if pgid <= 1:
        return []
    found = []
    for proc in psutil.process_iter():
        try:
            pid = proc.pid
            if os.getpgid(pid) == pgid or os.getsid(pid) == pgid:
                found.append(proc)
        except (OSError, psutil.Error):
            continue
    return found


Process = psutil.Process  # for callers' annotations: psutil is this package's to import


def session_processes(leader: int | None, foreground: int | None) -> list[psutil.Process]:
    """Everything of a session: the program's group and session (`leader`), the terminal's
    foreground group, and every descendant of this process (a subreaper inherits the
    double-forked ones); never this process itself."""
    procs: dict[int, psutil.Process] = {}
    for group in (leader, foreground):
        if group is not None:
            procs.update((p.pid, p) for p in group_members(group))
    with contextlib.suppress(psutil.Error):
        procs.update((p.pid, p) for p in psutil.Process().children(recursive=True))
    procs.pop(os.getpid(), None)
    return list(procs.values())


def kill_now(procs: list[psutil.Process]) -> None:
    """SIGKILL each, sparing `protected_pids` (the last resort of a failing worker)."""
    protected = protected_pids()
    for proc in procs:
        if proc.pid not in protected:
            with contextlib.suppress(psutil.Error):
                proc.kill()


def alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    left = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                left.append(proc)
        except psutil.Error:
            continue
    return left


def protected_pids() -> frozenset[int]:
    """Never signalled, whatever a target list says: init, this process and its ancestors
    (the CLI's shell, a CI runner, the dashboard's terminal)."""
    pids = {0, 1, os.getpid()}
    with contextlib.suppress(psutil.Error):
        pids.update(p.pid for p in psutil.Process().parents())
    return frozenset(pids)


def _send(procs: list[psutil.Process], sig: int) -> None:
    for proc in procs:
        # psutil refuses (NoSuchProcess) when the pid now belongs to another process.
        with contextlib.suppress(psutil.Error, OSError):
            proc.send_signal(sig)


def ladder(
    targets: Callable[[], list[psutil.Process]], grace: float = 2.0
) -> Generator[Pause, None, KillResult]:
    """HUP -> TERM(+CONT) -> KILL over `targets()`; yields how long to wait between checks."""
    result = KillResult()
    protected = protected_pids()

    def live() -> list[psutil.Process]:
        return [p for p in alive(targets()) if p.pid not in protected]

    steps: list[tuple[str, tuple[int, ...], float]] = [
        ("SIGHUP", (signal.SIGHUP,), grace),
        ("SIGTERM", (signal.SIGTERM, signal.SIGCONT), grace),
        ("SIGKILL", (signal.SIGKILL,), max(grace, 2.0)),
    ]
    for name, signals, wait in steps:
        procs = live()
        if not procs:
            return result
        result.escalated.append(name)
        failpoints.hit(f"kill.before_{name}")
        for sig in signals:
            _send(procs, sig)
        deadline = time.monotonic() + wait
        while (left := deadline - time.monotonic()) > 0:
            yield Pause(left, tuple(p.pid for p in procs))
            procs = live()
            if not procs:
                return result
    result.survivors = sorted(p.pid for p in live())
    return result


def run_sync(gen: Generator[Pause, None, KillResult]) -> KillResult:
    try:
        while True:
            pause_sync(next(gen))
    except StopIteration as stop:
        result: KillResult = stop.value
        return result


async def run_async(gen: Generator[Pause, None, KillResult]) -> KillResult:
    try:
        while True:
            await pause_async(next(gen))
    except StopIteration as stop:
        result: KillResult = stop.value
        return result
