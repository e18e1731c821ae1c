"""The C library's calls that Python's os module lacks (prctl, inotify, madvise, malloc_trim),
through one handle opened once: a CDLL is a dlopen and a class of its own (~0.3 ms), and the
warm spawner's handle is every worker's it forks. ctypes is imported on first use only: the
CLI's hot paths never need it.

inotify is how a waiter learns that a file changed or was let go without polling for it
(the state lock, the spawner's watch on the code). It sees only what this kernel does: a
change made on another machine (a network filesystem) sends no event, so a caller that
waits on it polls too, less often.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # without importing typing: the worker's start-up imports this
if TYPE_CHECKING:
    import ctypes
    from collections.abc import Iterable

# <sys/inotify.h>
IN_MODIFY, IN_ATTRIB, IN_CLOSE_WRITE, IN_CLOSE_NOWRITE = 0x2, 0x4, 0x8, 0x10
IN_MOVED_FROM, IN_MOVED_TO, IN_CREATE, IN_DELETE = 0x40, 0x80, 0x100, 0x200
IN_DELETE_SELF, IN_MOVE_SELF = 0x400, 0x800
IN_CLOSE = IN_CLOSE_WRITE | IN_CLOSE_NOWRITE

_handle: ctypes.CDLL | None = None


def function(name: str) -> ctypes._NamedFuncPointer:
    """libc's `name`, with errno kept for `last_error`; OSError or AttributeError where
    there is no such call. The process's own symbols include libc's: no `find_library`
    (it runs subprocesses)."""
    global _handle
    if _handle is None:
        import ctypes

        _handle = ctypes.CDLL(None, use_errno=True)
    call: ctypes._NamedFuncPointer = getattr(_handle, name)
    return call


def last_error() -> OSError:
    """The errno the last call through `function` left, as an OSError."""
    import ctypes

    err = ctypes.get_errno()
    return OSError(err, os.strerror(err))


def inotify_watch(paths: Iterable[str], mask: int) -> int:
    """A non-blocking inotify descriptor watching every one of `paths` for `mask`; -1 where
    that cannot be done (no inotify, the user's limit of instances or watches reached, a
    path gone): nothing is ever part-watched, so a change it would miss cannot go unseen."""
    try:
        init, add = function("inotify_init1"), function("inotify_add_watch")
    except (OSError, AttributeError):
        return -1
    fd = int(init(os.O_NONBLOCK | os.O_CLOEXEC))
    if fd < 0:
        return -1
    for path in paths:
        if add(fd, os.fsencode(path), mask) < 0:
            os.close(fd)
            return -1
    return fd


def inotify_drain(fd: int) -> bool:
    """Read every event queued on `fd`; True if there was one (or the queue cannot be read:
    the caller then looks for itself)."""
    had = False
    try:
        while os.read(fd, 65536):
            had = True
    except BlockingIOError:
        pass
    except OSError:
        return True
    return had
