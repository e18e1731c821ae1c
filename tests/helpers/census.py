"""Finding processes that belong to a test's agentty home, by their environment."""

from __future__ import annotations

import os

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
