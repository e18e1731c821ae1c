"""Who holds the state lock, from `/proc/locks`: said when a wait for it times out and by
`doctor` (a command stopped with Ctrl-Z while it held the lock kept every start, kill and
exit's record waiting, and the error named only the lock file)."""

from __future__ import annotations

import os

from agentty_core.screen_text import printable


class Holder:
    """A process holding a lock: its pid, its name and whether it is stopped."""

    __slots__ = ("name", "pid", "stopped")

    def __init__(self, pid: int, name: str, stopped: bool) -> None:
        self.pid, self.name, self.stopped = pid, name, stopped

    def __str__(self) -> str:
        return f"pid {self.pid} ({self.name}){', stopped' if self.stopped else ''}"


def lock_holders(path: os.PathLike[str] | str) -> list[Holder]:
    """The processes holding a lock on the file at `path` (none when it cannot be told)."""
    try:
        st = os.stat(path, follow_symlinks=False)
        with open("/proc/locks") as locks:
            lines = locks.read().splitlines()
    except OSError:
        return []
    where = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    found: list[Holder] = []
    for line in lines:
        fields = line.split()
        if "->" in fields or len(fields) < 6 or fields[5] != where or not fields[4].isdigit():
            continue  # (a waiter, or another file's)
        pid = int(fields[4])
        holder = _holder(pid)
        if holder is not None:
            found.append(holder)
        else:
            # The process that took it is gone; a child it forked holds the descriptor,
            # and with it the lock (`flock LOCK sleep 60`, the `flock` killed): the kernel
            # says so in that descriptor's fdinfo.
            found += [h for h in map(_holder, _by_descriptor(where)) if h is not None]
    return found


def _holder(pid: int) -> Holder | None:
    try:
        with open(f"/proc/{pid}/stat") as stat_file:
            stat_line = stat_file.read()
    except OSError:
        return None  # gone
    close = stat_line.rfind(")")
    name = stat_line[stat_line.find("(") + 1 : close]
    return Holder(pid, printable(name), stat_line[close + 2 : close + 3] in "Tt")


def _by_descriptor(where: str) -> list[int]:
    """The pids whose descriptors hold a lock on the file `where` (dev:ino, as /proc/locks
    writes it): every process of ours looked at, a few ms (said only once a wait for the
    lock timed out, and by `doctor`)."""
    found: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fds = os.listdir(f"/proc/{entry}/fdinfo")
        except OSError:
            continue  # (another user's, or gone)
        for fd in fds:
            try:
                with open(f"/proc/{entry}/fdinfo/{fd}") as info:
                    text = info.read()
            except OSError:
                continue
            if "lock:" in text and any(
                line.startswith("lock:") and f" {where} " in line for line in text.splitlines()
            ):
                found.append(int(entry))
                break
    return found


def held_by(path: os.PathLike[str] | str) -> str:
    """`held by pid N (name), stopped: kill -CONT N`, or "" when nobody can be named."""
    holders = lock_holders(path)
    if not holders:
        return ""
    said = f"held by {', '.join(map(str, holders))}"
    halted = [h.pid for h in holders if h.stopped]
    return said + (f" (kill -CONT {' '.join(map(str, halted))}, or end it)" if halted else "")
