"""Ending a session's whole process tree, and confirming it is gone.

The ladder is tmux's and systemd's: SIGHUP, a grace period, SIGTERM with SIGCONT (a stopped
process does not act on SIGTERM), another grace period, SIGKILL, then wait until nothing is
left. Targets are re-enumerated every round, since processes fork while being killed. Every
signal goes through a psutil handle, which refuses a pid whose start time changed, so a
recycled pid is never signalled.

The ladder is a generator that yields how long to sleep, so the worker drives it with
`asyncio.sleep` (it keeps serving other clients meanwhile) and the CLI with `time.sleep`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field

import psutil

from agentty_core import failpoints

POLL = 0.02


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
) -> Generator[float, None, KillResult]:
    """HUP -> TERM(+CONT) -> KILL over `targets()`; yields seconds to sleep between checks."""
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
        while time.monotonic() < deadline:
            yield POLL
            if not live():
                return result
    result.survivors = sorted(p.pid for p in live())
    return result


def run_sync(gen: Generator[float, None, KillResult]) -> KillResult:
    try:
        while True:
            time.sleep(next(gen))
    except StopIteration as stop:
        result: KillResult = stop.value
        return result


async def run_async(gen: Generator[float, None, KillResult]) -> KillResult:
    try:
        while True:
            await asyncio.sleep(next(gen))
    except StopIteration as stop:
        result: KillResult = stop.value
        return result
