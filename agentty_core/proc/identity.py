"""Process identity that survives pid reuse and wall-clock jumps.

A pid alone is never trusted: identity is the pid plus its start time. On Linux the start
time is read as clock ticks since boot from `/proc/<pid>/stat`, tagged with the boot id, so
it does not move when the wall clock is stepped (psutil's `create_time()` does, since it adds
a boot time re-read on every call). Elsewhere psutil's creation time is compared with a
tolerance. Stdlib only on Linux: this runs on the CLI's hot path.
"""

from __future__ import annotations

import os
from functools import cache

_PROC = "/proc"
# The kernel's "this task is exiting" flag (/proc/<pid>/stat field 9): set before a dying
# process closes its files, so a client whose connection was just reset by a killed worker
# finds it dead, not still "running" for the moment until it becomes a zombie.
_PF_EXITING = 0x4


@cache
def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return ""


@cache
def _clock_ticks() -> int:
    return os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"{_PROC}/{pid}/stat", "rb") as f:
            raw = f.read().decode("utf-8", "replace")
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may itself contain ") ".
    close = raw.rfind(")")
    return raw[close + 2 :].split()


def start_token(pid: int) -> str | None:
    """`<boot id>:<start ticks>` for a live pid, or None when it cannot be read."""
    if pid <= 0:
        return None
    if os.path.isdir(_PROC):
        fields = _stat_fields(pid)
        if fields is None or len(fields) < 20:
            return None
        if fields[0] == "Z":  # a zombie has exited; it is not the process we recorded alive
            return None
        if int(fields[6]) & _PF_EXITING:  # ending: it will serve no one again
            return None
        return f"{_boot_id()}:{fields[19]}"
    try:
        import psutil

        return f"ct:{psutil.Process(pid).create_time():.2f}"
    except Exception:
        return None


def exiting(pid: int) -> bool:
    """Whether `pid` is being ended by the kernel (its PF_EXITING flag), not yet a zombie."""
    fields = _stat_fields(pid) if pid > 0 else None
    return fields is not None and len(fields) > 6 and bool(int(fields[6]) & _PF_EXITING)


def same_process(pid: int, token: str | None) -> bool:
    """True when `pid` is alive and still the process whose start token was recorded."""
    current = start_token(pid)
    if current is None or token is None:
        return False
    if current.startswith("ct:") and token.startswith("ct:"):
        return abs(float(current[3:]) - float(token[3:])) <= 1.0
    return current == token


def worker_fields(pid: int) -> dict[str, object]:
    """A worker as a session record names it: its pid and what tells that process apart
    from a later one with the same pid."""
    return {"workerPid": pid, "workerStart": start_token(pid), "workerCreateTime": create_time(pid)}


def holder_fields(pid: int) -> dict[str, object]:
    """The process that holds a session (`run`), as its record names it: `gc` leaves the
    session to it while it lives."""
    return {"holderPid": pid, "holderStart": start_token(pid)}


def create_time(pid: int) -> float | None:
    """Wall-clock start time, for display only (it moves with the clock)."""
    fields = _stat_fields(pid) if os.path.isdir(_PROC) else None
    if fields is None or len(fields) < 20:
        return None
    try:
        with open("/proc/stat") as f:
            btime = next(int(line.split()[1]) for line in f if line.startswith("btime"))
    except (OSError, StopIteration, ValueError):
        return None
    return btime + int(fields[19]) / _clock_ticks()
