"""Finding processes that belong to a test's agentty home, by their environment; what
/proc says of one."""

from __future__ import annotations

import contextlib
import os
import time

import psutil


def _pids_naming(home: str) -> list[int]:
    """Pids whose environment holds `AGENTTY_HOME=home`, from /proc directly: one read per
    process instead of psutil's parsed environ (the census runs after every test, over
    every process of a shared machine). A zombie's or another user's environ reads empty
    or fails, and is skipped here as psutil would."""
    needle = b"\0AGENTTY_HOME=" + os.fsencode(home) + b"\0"
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                data = f.read()
        except OSError:
            continue
        if needle in b"\0" + data + b"\0":
            found.append(int(entry))
    return found


def processes_of_home(home: str) -> list[psutil.Process]:
    """Every live process (workers and programs) whose environment names `home`."""
    found = []
    me = os.getpid()
    for pid in _pids_naming(home):
        if pid == me:
            continue
        try:
            proc = psutil.Process(pid)
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


def blocked_mask(pid: int) -> int:
    """Process `pid`'s blocked signals (`SigBlk`), bit N-1 for signal N."""
    with open(f"/proc/{pid}/status") as f:
        return int(next(line for line in f if line.startswith("SigBlk:")).split()[1], 16)
