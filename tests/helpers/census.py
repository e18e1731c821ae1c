"""Finding processes that belong to a test's agentty home, by their environment."""

from __future__ import annotations

import contextlib
import os
import time

import psutil


def processes_of_home(home: str) -> list[psutil.Process]:
    """Every live process (workers and programs) whose environment names `home`."""
    found = []
    me = os.getpid()
    for proc in psutil.process_iter():
        if proc.pid == me:
            continue
        try:
            if proc.environ().get("AGENTTY_HOME") == home and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (psutil.Error, OSError):
            continue
    return found


def describe(procs: list[psutil.Process]) -> str:
    parts = []
    for proc in procs:
        try:
            parts.append(f"pid {proc.pid}: {' '.join(proc.cmdline())[:100]}")
        except psutil.Error:
            parts.append(f"pid {proc.pid}: (gone)")
    return "; ".join(parts)


def sweep_home(home: str, grace: float = 3.0) -> list[psutil.Process]:
    """After a test: wait up to `grace` for the home's processes to finish (a worker answers
    `kill` and then exits), kill what is left, and return it so the test can be failed."""
    deadline = time.monotonic() + grace
    while (left := processes_of_home(home)) and time.monotonic() < deadline:
        time.sleep(0.05)
    for proc in left:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    return left
