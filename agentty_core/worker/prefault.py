"""The pages a forked worker will write, copied by its spare before anybody waits for them.

A worker forked by the spawner shares its memory until it writes to it, and every first
write to a page is a fault that copies that page (~4 us each in this VM). A `start` writes
~1200 of them, and they are the same pages in every worker forked from the same process
(measured: 1188 of 1194 in common between two workers). So the spare maker learns them
once, from a worker that has started (`learn`: its `/proc/PID/pagemap`, the pages present
and mapped by that process alone), and every spare it forks afterwards copies them while it
waits (`populate`: `MADV_POPULATE_WRITE`, one call per run of pages), off the caller's time.
The spare's memory is what its worker's would have become anyway; a page learnt wrong costs
4 KiB, never a wrong result.

When: not while a worker starts. Copying ~5 MiB (~5 ms of CPU) while the worker that took
the last request still starts competed with it for the two cores here and took back most of
the gain (A/B: -0.2 ms a start at once; deferred, -2.4 ms with starts back to back and
-5.6 ms with starts spaced out). The spawner forks a spare only once that start is about
over (`spawner.SPARE_AFTER`); the spare then waits `QUIET` for a request, copies a few runs
at a time and stops as soon as a request comes (what is left is faulted in as before).
"""

from __future__ import annotations

import os
import select
from array import array
from collections.abc import Callable

from agentty_core import libc

PAGE = os.sysconf("SC_PAGE_SIZE")
MADV_POPULATE_WRITE = 23  # Linux 5.14; older kernels say EINVAL and nothing is copied
PRESENT = 1 << 63
EXCLUSIVE = 1 << 56  # "page exclusively mapped" (Linux 4.2), shown without privileges
MAX_PAGES = 4096  # 16 MiB: a worker that wrote more was not idle; its pages are not a model
QUIET = 0.005  # (forked after the start before it: it no longer waits that out here)
CHUNK = 64  # pages copied between two looks for a request (~0.25 ms)

# Learnt in the maker, inherited by every spare it forks: start and length (bytes) of each
# run of pages, in one buffer (iterating it writes no page of it in the spare).
learnt: array[int] | None = None
_madvise: Callable[[int, int, int], int] | None = None


def learn(pid: int, pidfd: int) -> array[int] | None:
    """The runs of pages the process `pidfd` refers to (a worker forked from a copy of us)
    has written, that we have too; None if they cannot be read or it is gone (then `pid`
    may be another process's by now)."""
    try:
        ours = _private_writable("self")
        theirs = _private_writable(str(pid))
        fd = os.open(f"/proc/{pid}/pagemap", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    runs = array("Q")
    pages = 0
    try:
        for start, end in _overlaps(theirs, ours):
            count = (end - start) // PAGE
            entries = array("Q")
            entries.frombytes(os.pread(fd, count * 8, start // PAGE * 8))
            run_start = -1
            for i, entry in enumerate(entries):
                written = entry & PRESENT and entry & EXCLUSIVE
                if written and run_start < 0:
                    run_start = i
                elif not written and run_start >= 0:
                    runs.extend((start + run_start * PAGE, (i - run_start) * PAGE))
                    pages += i - run_start
                    run_start = -1
            if run_start >= 0:
                runs.extend((start + run_start * PAGE, (len(entries) - run_start) * PAGE))
                pages += len(entries) - run_start
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)
    if select.select([pidfd], [], [], 0)[0]:
        return None  # it exited while we read: the pid may name another process's pages
    return runs if 0 < pages <= MAX_PAGES else None


def prepare() -> bool:
    """Find libc's madvise (in the maker: once, not in every spare); False if there is none."""
    global _madvise
    import ctypes

    try:
        function = libc.function("madvise")
    except (OSError, AttributeError):
        return False
    function.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    function.restype = ctypes.c_int
    _madvise = function
    return True


def populate_while_idle(runs: array[int] | None, request_fd: int) -> int:
    """`populate` once nothing has come on `request_fd` for QUIET, and only until something
    does; the pages copied."""
    if not runs or _madvise is None or _readable(request_fd, QUIET):
        return 0
    return populate(runs, lambda: _readable(request_fd, 0))


def populate(runs: array[int] | None, stop: Callable[[], bool] | None = None) -> int:
    """Write-fault every page of `runs` now (a private copy of each), asking `stop` every
    CHUNK pages; the pages copied. A kernel without MADV_POPULATE_WRITE stops it at the
    first run: nothing is lost."""
    if not runs or _madvise is None:
        return 0
    copied = since_asked = 0
    for i in range(0, len(runs) - 1, 2):
        if stop is not None and since_asked >= CHUNK:
            if stop():
                break
            since_asked = 0
        if _madvise(runs[i], runs[i + 1], MADV_POPULATE_WRITE) == 0:
            copied += runs[i + 1] // PAGE
            since_asked += runs[i + 1] // PAGE
            continue
        import ctypes
        import errno

        if ctypes.get_errno() in (errno.EINVAL, errno.ENOSYS, errno.EPERM):
            break  # not this kernel's: a spare as before
        # ENOMEM, EFAULT: that run is no longer mapped as it was; the rest still help
    return copied


def _readable(fd: int, timeout: float) -> bool:
    try:
        return bool(select.select([fd], [], [], timeout)[0])
    except (OSError, ValueError):
        return True  # as if a request came: the spare goes on to it


def _private_writable(pid: str) -> list[tuple[int, int]]:
    """The private writable mappings of a process (its heap, arenas, the modules' data)."""
    found = []
    with open(f"/proc/{pid}/maps", "rb") as f:
        for line in f:
            fields = line.split(None, 5)
            if len(fields) >= 2 and fields[1] == b"rw-p":
                low, _, high = fields[0].partition(b"-")
                found.append((int(low, 16), int(high, 16)))
    return found


def _overlaps(theirs: list[tuple[int, int]], ours: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Where both have a private writable mapping (both lists sorted, as maps lists them)."""
    found = []
    i = j = 0
    while i < len(theirs) and j < len(ours):
        low = max(theirs[i][0], ours[j][0])
        high = min(theirs[i][1], ours[j][1])
        if low < high:
            found.append((low, high))
        if theirs[i][1] < ours[j][1]:
            i += 1
        else:
            j += 1
    return found
